import Foundation

/// Runs blocking work (waiting for a child process, reading its output) on a thread of its own, so it never
/// holds one of the few threads Swift concurrency runs every test on.
public func offloaded<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try body() })
        }
        thread.start()
    }
}
