import Foundation
import HeraldCore
import HeraldPostgres
import HeraldServer
import HeraldTestSupport
import Testing

/// postgres_changes under row level security and column privileges: what each token receives is exactly what the
/// database would show it (reference section 3.6).
@Suite struct RowSecurityTests {
    static let setup = """
        CREATE TABLE notes (id int PRIMARY KEY, owner text NOT NULL, team text NOT NULL, body text, secret text);
        REVOKE SELECT ON notes FROM authenticated;
        GRANT SELECT (id, owner, team, body) ON notes TO authenticated;
        ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
        CREATE POLICY visible ON notes FOR SELECT TO authenticated USING (
            owner = current_setting('request.jwt.claims', true)::jsonb->>'sub'
            OR team = (SELECT current_setting('request.jwt.claims', true)::jsonb->>'team'));
        CREATE TABLE markers (id int PRIMARY KEY);
        SELECT realtime.enable_capture('notes');
        SELECT realtime.enable_capture('markers');
        """

    struct Subscriber {
        let name: String
        let claims: JSONObject
        let socket: TestWebSocket
    }

    struct Received {
        var inserts: [Int] = []
        var updates: [Int] = []
        var deletes: [Int] = []
        var records: [JSONValue] = []
        var columnNames: Set<String> = []
    }

    func subscribe(_ herald: HeraldInstance, _ name: String, role: String, claims: JSONObject) async throws -> Subscriber {
        var all = claims
        all["sub"] = .string(name)
        let token = try await herald.token(role: role, extra: all)
        let socket = try await herald.socket(token: token)
        let bindings: JSONValue = [
            ["event": "*", "schema": "public", "table": "notes"],
            ["event": "INSERT", "schema": "public", "table": "markers"],
        ]
        let (reply, system) = try await socket.joinV2("realtime:notes", config: ["postgres_changes": bindings])
        #expect(reply.arrayValue?[4]["status"] == "ok")
        #expect(system?.arrayValue?[4]["status"] == "ok")
        var full = all
        full["role"] = .string(role)
        return Subscriber(name: name, claims: full, socket: socket)
    }

    /// Everything up to the insert of marker `marker`.
    func receive(_ subscriber: Subscriber, until marker: Int, into received: inout Received) async throws {
        while true {
            let message = try await subscriber.socket.receiveJSON()
            guard message.arrayValue?[3] == "postgres_changes", let data = message.arrayValue?[4]["data"] else { continue }
            if data["table"] == "markers" {
                if data["record"]?["id"]?.intValue == marker { return }
                continue
            }
            #expect(data["errors"] == .null)
            for column in data["columns"]?.arrayValue ?? [] { if let name = column["name"]?.stringValue { received.columnNames.insert(name) } }
            switch data["type"]?.stringValue {
            case "INSERT":
                received.inserts.append(data["record"]?["id"]?.intValue ?? -1)
                received.records.append(data["record"] ?? .null)
            case "UPDATE":
                received.updates.append(data["record"]?["id"]?.intValue ?? -1)
                received.records.append(data["record"] ?? .null)
            case "DELETE":
                received.deletes.append(data["old_record"]?["id"]?.intValue ?? -1)
                // Deleted rows cannot be checked: under RLS only their key is sent.
                #expect(data["old_record"]?.objectValue?.keys == ["id"])
            default:
                Issue.record("unexpected event \(data)")
            }
        }
    }

    /// The rows `SELECT` returns as this token, straight from the database.
    func selectable(_ herald: HeraldInstance, _ subscriber: Subscriber) async throws -> Set<Int> {
        let claims = JSONValue.object(subscriber.claims).jsonString
        let role = subscriber.claims["role"]?.stringValue ?? ""
        return try await herald.database.withConnection { connection in
            _ = try connection.execute("BEGIN")
            defer { _ = try? connection.execute("ROLLBACK") }
            _ = try connection.execute("SELECT set_config('request.jwt.claims', $1, true), set_config('role', $2, true)", params: [claims, role])
            return Set(try connection.execute("SELECT id FROM notes").values.compactMap { $0[0].flatMap { Int($0) } })
        }
    }

    @Test(arguments: [ChangeSourceConfiguration.Kind.trigger, .replication])
    func everyTokenReceivesExactlyTheRowsAndColumnsItMaySelect(source: ChangeSourceConfiguration.Kind) async throws {
        try await withHerald({ $0.changeSource.kind = source }) { herald in
            try await herald.script(Self.setup)
            let teams = ["red", "blue", "green"]
            var users: [Subscriber] = []
            for (index, name) in ["alice", "bob", "carol", "dave"].enumerated() {
                users.append(try await subscribe(herald, name, role: "authenticated", claims: ["team": .string(teams[index % 3])]))
            }
            let anon = try await subscribe(herald, "visitor", role: "anon", claims: [:])
            let service = try await subscribe(herald, "backend", role: "service_role", claims: [:])

            // Scattered owners, teams and updates; owners and teams never change, so what a token may select is the same
            // when Herald checks and when the test asks afterwards.
            let owners = ["alice", "bob", "carol", "dave", "erin"]
            var updatesByID: [Int: Int] = [:]
            for id in 1...40 {
                let owner = owners[(id * 37 + 11) % owners.count]
                let team = teams[(id * 13 + 5) % teams.count]
                try await herald.sql("INSERT INTO notes VALUES ($1, $2, $3, 'body', 'secret')", [String(id), owner, team])
                if id % 3 == 0 {
                    let target = (id / 3 * 17) % id + 1
                    try await herald.sql("UPDATE notes SET body = 'edited' WHERE id = $1", [String(target)])
                    updatesByID[target, default: 0] += 1
                }
            }
            try await herald.sql("INSERT INTO markers VALUES (1)")
            // Visibility is decided when Herald checks, after the commit: a row deleted before that is not sent as
            // inserted (as upstream). So the deletes wait until every token got the inserts.
            let everyone = users + [anon, service]
            var receivedByUser: [String: Received] = [:]
            var selectableByUser: [String: Set<Int>] = [:]
            for user in everyone {
                try await receive(user, until: 1, into: &receivedByUser[user.name, default: Received()])
                selectableByUser[user.name] = try await selectable(herald, user)
            }
            try await herald.sql("DELETE FROM notes WHERE id <= 5")
            try await herald.sql("INSERT INTO markers VALUES (2)")

            for user in everyone {
                var received = receivedByUser[user.name] ?? Received()
                try await receive(user, until: 2, into: &received)
                let selectable = selectableByUser[user.name] ?? []
                #expect(Set(received.inserts) == selectable, "\(user.name): inserts")
                #expect(received.inserts.count == selectable.count, "\(user.name): no duplicates")
                let expectedUpdates = updatesByID.filter { selectable.contains($0.key) }.flatMap { Array(repeating: $0.key, count: $0.value) }
                #expect(received.updates.sorted() == expectedUpdates.sorted(), "\(user.name): updates")
                #expect(received.deletes.sorted() == [1, 2, 3, 4, 5], "\(user.name): deletes")
                if user.claims["role"] == "authenticated" {
                    #expect(!received.columnNames.contains("secret"))
                    #expect(received.records.allSatisfy { $0["secret"] == nil })
                }
            }
            #expect(selectableByUser["visitor"]?.isEmpty == true)
            #expect(selectableByUser["backend"]?.count == 40)
            #expect(users.allSatisfy { (selectableByUser[$0.name]?.count ?? 0) > 5 })
            for user in everyone { await user.socket.close() }
        }
    }

    /// A transaction that changes privileges or turns RLS on and writes rows: its rows are checked under the rules
    /// it committed, even when the WAL brings them before the transaction is visible to Herald's check.
    @Test(arguments: [ChangeSourceConfiguration.Kind.trigger, .replication])
    func rowsWrittenWithNewRulesAreCheckedUnderThem(source: ChangeSourceConfiguration.Kind) async throws {
        try await withHerald({ $0.changeSource.kind = source }) { herald in
            try await herald.script(Self.setup + "CREATE TABLE docs (id int PRIMARY KEY, body text, secret text); SELECT realtime.enable_capture('docs');")
            let subscriber = try await subscribe(herald, "alice", role: "authenticated", claims: ["team": "red"])
            let bindings: JSONValue = [["event": "INSERT", "schema": "public", "table": "docs"]]
            _ = try await subscriber.socket.joinV2("realtime:docs", config: ["postgres_changes": bindings])
            // Checked before the rules change (visibility is decided when Herald checks).
            try await herald.script("INSERT INTO docs VALUES (1, 'b', 's'); INSERT INTO markers VALUES (1);")
            var before = Received()
            try await receive(subscriber, until: 1, into: &before)
            #expect(before.inserts == [1] && before.records.first?["secret"] == "s")
            try await herald.script("""
                BEGIN;
                REVOKE SELECT ON docs FROM authenticated;
                GRANT SELECT (id, body) ON docs TO authenticated;
                INSERT INTO docs VALUES (2, 'b', 's');
                COMMIT;
                INSERT INTO markers VALUES (2);
                """)
            var revoked = Received()
            try await receive(subscriber, until: 2, into: &revoked)
            #expect(revoked.inserts == [2] && revoked.records.first?.objectValue?.keys == ["id", "body"])
            try await herald.script("""
                BEGIN;
                ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
                CREATE POLICY odd ON docs FOR SELECT USING (id % 2 = 1);
                INSERT INTO docs VALUES (3, 'b', 's'), (4, 'b', 's');
                COMMIT;
                INSERT INTO markers VALUES (3);
                """)
            var hidden = Received()
            try await receive(subscriber, until: 3, into: &hidden)
            #expect(hidden.inserts == [3] && hidden.records.first?.objectValue?.keys == ["id", "body"])
            await subscriber.socket.close()
        }
    }

    @Test func aRoleTheDatabaseDoesNotHaveIsRefusedAtJoin() async throws {
        try await withHerald { herald in
            try await herald.script(Self.setup)
            let token = try await herald.token(role: "no_such_role")
            let socket = try await herald.socket(token: token)
            let bindings: JSONValue = [["event": "INSERT", "schema": "public", "table": "notes"]]
            let (reply, system) = try await socket.joinV2("realtime:notes", config: ["postgres_changes": bindings])
            #expect(reply.arrayValue?[4]["status"] == "ok")
            #expect(system?.arrayValue?[4]["status"] == "error")
            #expect(
                system?.arrayValue?[4]["message"]?.stringValue
                    == #"Unable to subscribe to changes with given parameters. An exception happened so please check your connect parameters: [event: INSERT, schema: public, table: notes, filters: [], select: nil]. Exception: ERROR 42704 (undefined_object) role "no_such_role" does not exist"#
            )
            await socket.close()
        }
    }

    @Test func aKeyTheRoleCannotSelectIsError401() async throws {
        try await withHerald { herald in
            try await herald.script(Self.setup + "REVOKE SELECT ON markers FROM anon;")
            let socket = try await herald.socket(token: try await herald.token(role: "anon"))
            let bindings: JSONValue = [["event": "INSERT", "schema": "public", "table": "markers"]]
            _ = try await socket.joinV2("realtime:m", config: ["postgres_changes": bindings])
            try await herald.sql("INSERT INTO markers VALUES (1)")
            let data = try await socket.receiveJSON().arrayValue?[4]["data"]
            #expect(data?["errors"] == .array(["Error 401: Unauthorized"]))
            #expect(data?["record"] == .object([:]) && data?["columns"] == .array([]))
            await socket.close()
        }
    }

    /// Herald merges subscribers that agree on the claims the policies read (here `team`); when a policy starts
    /// reading another claim, the next change is already decided per the new claims.
    @Test func aPolicyThatStartsReadingAnotherClaimIsFollowedAtOnce() async throws {
        try await withHerald { herald in
            try await herald.script("""
                CREATE TABLE posts (id int PRIMARY KEY, team text NOT NULL, level int NOT NULL);
                ALTER TABLE posts ENABLE ROW LEVEL SECURITY;
                CREATE POLICY team_posts ON posts FOR SELECT USING (team = current_setting('request.jwt.claims', true)::jsonb ->> 'team');
                SELECT realtime.enable_capture('posts');
                """)
            var sockets: [String: TestWebSocket] = [:]
            for (name, level) in [("junior", 1), ("senior", 3)] {
                let token = try await herald.token(extra: ["sub": .string(name), "team": "red", "level": .number(String(level))])
                let socket = try await herald.socket(token: token)
                let bindings: JSONValue = [["event": "INSERT", "schema": "public", "table": "posts"]]
                let (reply, system) = try await socket.joinV2("realtime:posts", config: ["postgres_changes": bindings])
                #expect(reply.arrayValue?[4]["status"] == "ok" && system?.arrayValue?[4]["status"] == "ok")
                sockets[name] = socket
            }
            func received(by name: String, until last: Int) async throws -> [Int] {
                var ids: [Int] = []
                while ids.last != last {
                    let message = try await sockets[name]?.receiveJSON()
                    guard message?.arrayValue?[3] == "postgres_changes" else { continue }
                    ids.append(message?.arrayValue?[4]["data"]?["record"]?["id"]?.intValue ?? -1)
                }
                return ids
            }
            try await herald.sql("INSERT INTO posts VALUES (1, 'red', 2), (2, 'blue', 1)")
            try await herald.sql("INSERT INTO posts VALUES (3, 'red', 1)")
            #expect(try await received(by: "junior", until: 3) == [1, 3])
            #expect(try await received(by: "senior", until: 3) == [1, 3])

            try await herald.script("""
                ALTER POLICY team_posts ON posts USING (team = current_setting('request.jwt.claims', true)::jsonb ->> 'team'
                    AND level <= (current_setting('request.jwt.claims', true)::jsonb ->> 'level')::int);
                """)
            try await herald.sql("INSERT INTO posts VALUES (4, 'red', 2), (5, 'red', 3), (6, 'red', 1)")
            #expect(try await received(by: "junior", until: 6) == [6])
            #expect(try await received(by: "senior", until: 6) == [4, 5, 6])
            for socket in sockets.values { await socket.close() }
        }
    }

    /// When the database cannot say who may see a change, nobody gets it: its subscribers are told to refetch.
    @Test func aChangeWhoseVisibilityCannotBeCheckedIsWithheldAndReported() async throws {
        try await withHerald { herald in
            try await herald.script(Self.setup)
            let subscriber = try await subscribe(herald, "alice", role: "authenticated", claims: ["team": "red"])
            try await herald.sql("INSERT INTO notes VALUES (1, 'alice', 'red', 'b', 's')")
            var received = Received()
            try await herald.sql("INSERT INTO markers VALUES (1)")
            try await receive(subscriber, until: 1, into: &received)
            #expect(received.inserts == [1])

            try await herald.sql("ALTER FUNCTION realtime.visible_rows(jsonb) RENAME TO visible_rows_away")
            try await herald.sql("INSERT INTO notes VALUES (2, 'alice', 'red', 'b', 's')")
            var system: JSONValue?
            while system == nil {
                let message = try await subscriber.socket.receiveJSON()
                #expect(message.arrayValue?[3] != "postgres_changes", "a change went out unchecked: \(message)")
                if message.arrayValue?[3] == "system" { system = message.arrayValue?[4] }
            }
            #expect(system?["status"] == "error" && system?["extension"] == "postgres_changes")
            #expect(system?["message"]?.stringValue?.contains("Refetch") == true)

            try await herald.sql("ALTER FUNCTION realtime.visible_rows_away(jsonb) RENAME TO visible_rows")
            try await herald.sql("INSERT INTO notes VALUES (3, 'alice', 'red', 'b', 's')")
            try await herald.sql("INSERT INTO markers VALUES (2)")
            received = Received()
            try await receive(subscriber, until: 2, into: &received)
            #expect(received.inserts == [3])
            await subscriber.socket.close()
        }
    }
}
