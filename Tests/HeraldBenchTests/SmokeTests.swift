import Foundation
import Testing

/// Runs `herald-bench smoke` (the debug build beside this test binary) against a real Herald, then S1 and S2's
/// phases on the floor peer (and nchan when nginx is installed): it must finish with `"ok": true`. Nothing about
/// speed is asserted.
@Suite struct SmokeTests {
    @Test(.timeLimit(.minutes(3))) func smokeRunCountsDeliveriesAndConverges() throws {
        let folder = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        let bench = folder.appendingPathComponent("herald-bench")
        let process = Process()
        process.executableURL = bench
        process.arguments = ["smoke", "--herald", folder.appendingPathComponent("herald").path, "--timeout", "90"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 1, "one JSON summary line, got: \(lines)")
        let summary = try #require(lines.last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        #expect(summary["ok"] as? Bool == true, "problems: \(summary["problems"] ?? "none listed")")
        #expect(process.terminationStatus == 0)
    }
}
