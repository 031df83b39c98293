import ArgumentParser
import HeraldServer

/// `--source`, `--replication-slot` and `--publication`: which change source `herald serve` runs.
struct ChangeSourceOptions: ParsableArguments {
    @Option(name: .long, help: "trigger or replication (env: HERALD_SOURCE; default: replication when the server has wal_level=logical).")
    var source: String?

    @Option(name: .long, help: "Logical replication slot, one per deployment sharing a database (env: HERALD_REPLICATION_SLOT; default herald).")
    var replicationSlot: String?

    @Option(name: .long, help: "Publication Herald keeps equal to the captured tables (env: HERALD_PUBLICATION; default herald).")
    var publication: String?

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
        return configuration
    }
}
