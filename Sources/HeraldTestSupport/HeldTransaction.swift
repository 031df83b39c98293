import Foundation
import HeraldPostgres

/// A transaction on a connection of its own thread: it runs `statement`, takes a transaction id, and stays open
/// until the test commits it.
public final class HeldTransaction: @unchecked Sendable {
    private let url: String
    private let name: String
    private let statement: String
    private let opened = DispatchSemaphore(value: 0)
    private let committing = DispatchSemaphore(value: 0)
    private var finished: Task<Void, any Error>?
    /// Written before `opened` is signalled, read after.
    public private(set) var transactionID: UInt32?

    public init(url: String, name: String, statement: String) {
        self.url = url
        self.name = name
        self.statement = statement
    }

    public func open() async throws {
        finished = Task {
            try await offloaded { [self] in
                let connection: PGConnection
                do {
                    connection = try PGConnection(url: url, applicationName: name)
                    _ = try connection.execute("BEGIN")
                    _ = try connection.execute(statement)
                    transactionID = (try connection.execute("SELECT (txid_current() % 4294967296)::text").values.first?.first ?? nil).flatMap { UInt32($0) }
                } catch {
                    opened.signal()
                    throw error
                }
                opened.signal()
                committing.wait()
                _ = try connection.execute("COMMIT")
            }
        }
        try await offloaded { [opened] in opened.wait() }
    }

    public func commit() async throws {
        committing.signal()
        try await finished?.value
    }
}
