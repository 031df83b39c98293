#if canImport(Glibc)
import Glibc
#endif
import HeraldPostgres
import HeraldTestSupport
import Testing

@Suite("PGConnection")
struct PGConnectionTests {
    @Test func parametersAndNullsTravelAsText() async throws {
        let connection = try PGConnection(url: try await TestPostgres.shared.makeDatabase())
        let rows = try connection.execute("SELECT $1::int + 1 AS next, $2::text IS NULL AS missing, $3::text AS echo", params: ["41", nil, "héllo 'quoted'"])
        #expect(rows.columns == ["next", "missing", "echo"])
        #expect(rows.count == 1)
        #expect(rows[0]["next"] == "42")
        #expect(rows[0]["missing"] == "t")
        #expect(rows[0]["echo"] == "héllo 'quoted'")
        #expect(try connection.execute("SELECT NULL::int AS nothing")[0]["nothing"] == nil)
    }

    @Test func rowsAffectedAndScripts() async throws {
        let connection = try PGConnection(url: try await TestPostgres.shared.makeDatabase())
        try connection.executeScript("CREATE TABLE things (id int PRIMARY KEY, name text); INSERT INTO things VALUES (1, 'a'), (2, 'b'), (3, 'c');")
        #expect(try connection.execute("UPDATE things SET name = 'z' WHERE id > $1", params: ["1"]).rowsAffected == 2)
        #expect(try connection.execute("SELECT count(*) AS n FROM things")[0]["n"] == "3")
        #expect(try connection.execute("CREATE TABLE others (id int)").rowsAffected == 0)
    }

    @Test func serverErrorsCarrySQLStateDetailAndHint() async throws {
        let connection = try PGConnection(url: try await TestPostgres.shared.makeDatabase())
        let division = #expect(throws: PostgresError.self) { try connection.execute("SELECT 1 / 0") }
        #expect(division?.code == .server)
        #expect(division?.sqlState == "22012")
        #expect(division?.message == "division by zero")

        try connection.executeScript("CREATE TABLE unique_things (id int PRIMARY KEY); INSERT INTO unique_things VALUES (1);")
        let duplicate = #expect(throws: PostgresError.self) { try connection.execute("INSERT INTO unique_things VALUES (1)") }
        #expect(duplicate?.sqlState == "23505")
        #expect(duplicate?.detail == "Key (id)=(1) already exists.")
        // The connection stays usable after an error.
        #expect(try connection.execute("SELECT 1 AS one")[0]["one"] == "1")
    }

    @Test func parametersWithNulBytesAreRejected() async throws {
        let connection = try PGConnection(url: try await TestPostgres.shared.makeDatabase())
        let error = #expect(throws: PostgresError.self) { try connection.execute("SELECT $1::text", params: ["a\u{0}b"]) }
        #expect(error?.code == .invalidParameter)
    }

    @Test func escapeIdentifierQuotes() async throws {
        let connection = try PGConnection(url: try await TestPostgres.shared.makeDatabase())
        #expect(try connection.escapeIdentifier("herald_changes") == "\"herald_changes\"")
        #expect(try connection.escapeIdentifier("we\"ird name") == "\"we\"\"ird name\"")
    }

    @Test(arguments: ["not a url", "postgres://user@localhost/db?no_such_option=1"])
    func badURLsAreInvalidURLErrors(url: String) {
        let error = #expect(throws: PostgresError.self) { try PGConnection(url: url) }
        #expect(error?.code == .invalidURL)
    }

    @Test func unreachableServerIsOneClearLineWithoutThePassword() throws {
        let port = try LocalPostgresCluster.freePort()
        let error = #expect(throws: PostgresError.self) { try PGConnection(url: "postgres://alice:s3cret-pw@127.0.0.1:\(port)/db") }
        let description = error.map { "\($0)" } ?? ""
        #expect(error?.code == .connectionFailed)
        #expect(description.contains("Connection refused"))
        #expect(!description.contains("\n"))
        #expect(!description.contains("s3cret-pw"))
    }

    @Test func passwordsEchoedByLibpqAreRedacted() {
        let error = #expect(throws: PostgresError.self) { try PGConnection(url: "postgres://alice:se%zzcret@127.0.0.1/db") }
        #expect(error?.code == .invalidURL)
        #expect(!"\(error.map { "\($0)" } ?? "")".contains("zzcret"))
    }

    @Test func redactedURLs() {
        #expect(DatabaseURL.redacted("postgres://alice:s3cret@db:5432/app") == "postgres://alice:***@db:5432/app")
        #expect(DatabaseURL.redacted("postgres://db/app?password=s3cret&sslmode=require") == "postgres://db/app?password=***&sslmode=require")
        #expect(DatabaseURL.redacted("host=db password=s3cret dbname=app") == "host=db password=*** dbname=app")
        #expect(DatabaseURL.redacted("postgres://alice@db/app") == "postgres://alice@db/app")
        #expect(DatabaseURL.redacted("postgres://alice:a@db/app") == "postgres://alice:***@db/app")
        #expect(DatabaseURL.redacted("host=db password='s3cret' dbname=app") == "host=db password='***' dbname=app")
    }

    @Test func hangingServerTimesOut() throws {
        let server = try SilentServer()
        let start = ContinuousClock.now
        let error = #expect(throws: PostgresError.self) {
            try PGConnection(url: "postgres://u@127.0.0.1:\(server.port)/db", timeout: .milliseconds(300))
        }
        #expect(error?.message == "connection attempt timed out")
        #expect(ContinuousClock.now - start < .seconds(30))  // far below "never": only a hang fails
    }

    @Test func connectionAttemptCanBeCancelled() throws {
        let server = try SilentServer()
        let start = ContinuousClock.now
        let error = #expect(throws: PostgresError.self) {
            try PGConnection(
                url: "postgres://u@127.0.0.1:\(server.port)/db",
                timeout: .seconds(60),
                isCancelled: { ContinuousClock.now - start > .milliseconds(200) }
            )
        }
        #expect(error?.message == "connection attempt cancelled")
        #expect(ContinuousClock.now - start < .seconds(30))  // far below "never": only a hang fails
    }
}

/// A TCP socket that accepts connections (the kernel completes the handshake) but never answers.
final class SilentServer {
    let descriptor: Int32
    let port: Int

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(descriptor, socketAddress, length) == 0 && listen(descriptor, 8) == 0
                    && getsockname(descriptor, socketAddress, &length) == 0
            }
        }
        guard listening else {
            close(descriptor)
            throw PostgresError(code: .connectionFailed, message: "cannot open the silent test server")
        }
        self.descriptor = descriptor
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit {
        close(descriptor)
    }
}
