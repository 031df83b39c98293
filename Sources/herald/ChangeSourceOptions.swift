import ArgumentParser
import HeraldCore
import HeraldServer

/// `--source`, `--replication-slot`, `--publication` and the resume window: which change source `herald serve`
/// runs, and how much history it keeps for clients that resume.
struct ChangeSourceOptions: ParsableArguments {
    @Option(name: .long, help: "trigger or replication (env: HERALD_SOURCE; default: replication when the server has wal_level=logical).")
    var source: String?

    @Option(name: .long, help: "Logical replication slot, one per deployment sharing a database (env: HERALD_REPLICATION_SLOT; default herald).")
    var replicationSlot: String?

    @Option(name: .long, help: "Publication Herald keeps equal to the captured tables (env: HERALD_PUBLICATION; default herald).")
    var publication: String?

    @Option(name: .long, help: "Seconds of changes kept for clients that resume (env: HERALD_RESUME_WINDOW_SECONDS; default 300).")
    var resumeWindowSeconds: Int?

    @Option(name: .long, help: "Most MiB of changes kept for clients that resume (env: HERALD_RESUME_WINDOW_MB; default 128).")
    var resumeWindowMb: Int?

    func resolved() throws -> ChangeSourceConfiguration {
        var configuration = ChangeSourceConfiguration()
        if let name = source ?? Environment.value("SOURCE") {
            guard let kind = ChangeSourceConfiguration.Kind(rawValue: name) else {
                throw CommandFailure("--source must be trigger or replication, got '\(name)'")
            }
            configuration.kind = kind
        }
        configuration.slot = replicationSlot ?? Environment.value("REPLICATION_SLOT") ?? configuration.slot
        configuration.publication = publication ?? Environment.value("PUBLICATION") ?? configuration.publication
        if let seconds = try Self.nonNegative(resumeWindowSeconds, environment: "RESUME_WINDOW_SECONDS", option: "--resume-window-seconds") {
            configuration.retention.duration = .seconds(seconds)
        }
        if let megabytes = try Self.nonNegative(resumeWindowMb, environment: "RESUME_WINDOW_MB", option: "--resume-window-mb") {
            configuration.retention.maxBytes = megabytes << 20
        }
        return configuration
    }

    /// The option's value, else the environment's; 0 turns resuming off.
    private static func nonNegative(_ given: Int?, environment name: String, option: String) throws -> Int? {
        guard let value = try given ?? Environment.value(name).map({ text in
            guard let number = Int(text) else { throw CommandFailure("\(option) must be a whole number, got '\(text)'") }
            return number
        }) else { return nil }
        guard (0...1_000_000).contains(value) else { throw CommandFailure("\(option) must be between 0 and 1000000, got \(value)") }
        return value
    }
}
