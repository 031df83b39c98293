import ArgumentParser

extension Target: ExpressibleByArgument {}

/// A scenario's summary, with the figures it puts side by side with the same scenario run on another target.
protocol ScenarioSummary: Encodable {
    /// Named figures (`"users_1000.server_cpu_us_per_delivery"`), compared as Herald ÷ peer.
    var figures: [String: Double] { get }
}

/// Which server a scenario measures: one target, or all three in turn.
struct TargetOptions: ParsableArguments {
    @Option(help: "The server under test: herald, nchan (nginx + nchan, one worker) or floor (the raw NIO fan-out floor).")
    var target = Target.herald

    @Flag(help: "Run Herald, nchan and the floor one after the other and print Herald ÷ peer ratios (nchan is skipped when nginx is not installed).")
    var compare = false

    /// Runs `scenario` on the chosen target or, with `--compare`, on every target, and prints the one JSON line.
    func run<Summary: ScenarioSummary>(_ scenario: (Target) async throws -> Summary) async throws {
        guard compare else {
            print(try SummaryOutput.line(try await scenario(target)))
            return
        }
        var comparison = Comparison<Summary>()
        for target in Target.allCases {
            if target == .nchan, let reason = NchanServer.unavailableReason() {
                progress("skipping nchan: \(reason)")
                comparison.skipped[target.rawValue] = reason
                continue
            }
            do {
                comparison.runs[target.rawValue] = try await scenario(target)
            } catch {
                // One target failing leaves the others' numbers worth having.
                progress("\(target.rawValue) failed: \(error)")
                comparison.skipped[target.rawValue] = "failed: \(error)"
            }
        }
        comparison.computeRatios()
        print(try SummaryOutput.line(comparison))
    }
}

/// One scenario on every target, and Herald ÷ peer for each figure both have.
struct Comparison<Summary: ScenarioSummary>: Encodable {
    var runs: [String: Summary] = [:]
    /// Targets not run or failed, and why.
    var skipped: [String: String] = [:]
    /// By peer, then by figure: Herald's value ÷ the peer's (CPU per delivery, latency and memory: below 1 is
    /// better for Herald; deliveries/s and connects/s: above 1).
    var ratios: [String: [String: Double]] = [:]

    mutating func computeRatios() {
        guard let herald = runs[Target.herald.rawValue]?.figures else { return }
        for (peer, summary) in runs where peer != Target.herald.rawValue {
            ratios[peer] = Self.ratios(herald, summary.figures)
        }
    }

    static func ratios(_ herald: [String: Double], _ peer: [String: Double]) -> [String: Double] {
        var ratios: [String: Double] = [:]
        for (name, value) in herald {
            guard let other = peer[name], other > 0 else { continue }
            ratios[name] = (value / other * 1000).rounded() / 1000
        }
        return ratios
    }
}
