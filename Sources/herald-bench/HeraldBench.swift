// herald-bench: Herald's benchmark harness. It starts a throwaway PostgreSQL and `herald serve` pinned to one
// core, drives thousands of Phoenix V2 WebSocket clients from worker processes pinned to another, and prints one
// JSON summary line per run (docs/benchmarks.md).
import ArgumentParser
import Foundation

@main
struct HeraldBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald-bench",
        abstract: "Load-test Herald on loopback and print one JSON summary line.",
        subcommands: [
            S1Command.self, S2Command.self, S3Command.self, PresenceCommand.self, BroadcastCommand.self, SmokeCommand.self,
            ChangesCommand.self, RLSCommand.self, WorkerCommand.self, FloorServerCommand.self,
        ]
    )
}

/// Options every scenario shares.
struct HarnessOptions: ParsableArguments {
    @Option(help: "The herald executable (default: the one beside herald-bench; use a release build).")
    var herald: String?

    @Option(help: "Core for herald serve (-1: not pinned).")
    var serverCPU = 0

    @Option(help: "Core for the generator's processes (-1: not pinned).")
    var generatorCPU = 1

    @Option(help: "Core for the change scenarios' PostgreSQL and writer threads (-1: not pinned).")
    var databaseCPU = -1

    @Option(help: "Most sockets per generator process (every process here may hold 20,000 files).")
    var socketsPerWorker = 8_000

    @Option(help: "Sockets connecting at once, per generator process.")
    var connectConcurrency = 64

    @Option(help: "Abandon the run after this many seconds.")
    var timeout: Double = 900

    @Option(help: "nginx configuration template for --target nchan (default: Benchmarks/nchan/nginx.conf.template above this executable).")
    var nchanConfig: String?

    @Option(help: "Record perf profiles (cpu-clock, call graphs) of the server during each phase but the idle ones, into <prefix>-<n>-<kind>.data.")
    var perfRecord: String?

    func settings(target: Target = .herald) -> BenchRun.Settings {
        BenchRun.Settings(
            target: target,
            herald: herald ?? Subprocess.sibling("herald"),
            nchanTemplate: nchanConfig,
            serverCPU: serverCPU >= 0 ? serverCPU : nil,
            generatorCPU: generatorCPU >= 0 ? generatorCPU : nil,
            databaseCPU: databaseCPU >= 0 ? databaseCPU : nil,
            socketsPerWorker: max(1, socketsPerWorker),
            timeoutSeconds: timeout,
            perfPrefix: perfRecord
        )
    }
}

/// "1000,4000" → [1000, 4000]: positive whole numbers.
func parseCounts(_ text: String) throws -> [Int] {
    let counts = try parseRates(text)
    guard counts.allSatisfy({ $0 >= 1 && $0.rounded() == $0 }) else { throw ValidationError("expected comma-separated positive whole numbers, got '\(text)'") }
    return counts.map { Int($0) }
}

/// "50,100,200" → [50, 100, 200]; "" → none.
func parseRates(_ text: String) throws -> [Double] {
    let parts = text.split(separator: ",")
    if parts.isEmpty { return [] }
    let values = parts.compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
    guard values.count == parts.count, values.allSatisfy({ $0 >= 0 }) else {
        throw ValidationError("expected comma-separated non-negative numbers, got '\(text)'")
    }
    return values
}
