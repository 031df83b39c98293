import HeraldCore
import HeraldPostgres
import HeraldTestSupport
import Testing

/// `realtime.visible_rows` and `realtime.can_assume_role` (sql/realtime/authorization.sql) and the roles of
/// sql/schema/0003_roles.sql, against real policies and privileges.
@Suite("Authorization SQL")
struct AuthorizationSQLTests {
    static let setup = """
        CREATE TABLE notes (id int PRIMARY KEY, owner text, team text, secret text);
        REVOKE SELECT ON notes FROM authenticated;
        GRANT SELECT (id, owner, team) ON notes TO authenticated;
        ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
        -- The subselect becomes an init plan evaluated once per statement: it must still see each group's claims.
        CREATE POLICY mine ON notes FOR SELECT TO authenticated
            USING (owner = (SELECT current_setting('request.jwt.claims', true)::jsonb->>'sub')
                OR team = current_setting('request.jwt.claims', true)::jsonb->>'team');
        CREATE POLICY broken ON notes FOR SELECT TO anon USING (1 / (id - id) = 1);
        INSERT INTO notes VALUES (1, 'alice', 'red', 's'), (2, 'bob', 'blue', 's'), (3, 'carol', 'red', 's');
        CREATE TABLE open (id int PRIMARY KEY, body text);
        CREATE TABLE keyless (body text);
        """

    func ask(_ client: PostgresClient, _ checks: [VisibilityCheck]) async throws -> [VisibilityAnswer] {
        let rows = try await client.query("SELECT realtime.visible_rows($1::jsonb)::text", [VisibilityCheck.requestJSON(checks)])
        return try VisibilityAnswer.parse(rows.values[0][0] ?? "")
    }

    func group(_ role: String, _ claims: JSONObject) -> ClaimGroup {
        ClaimGroup(TokenClaims(role: role, expiresAt: 0, claims: claims))
    }

    @Test func policiesPrivilegesAndRolesDecidePerGroup() async throws {
        let client = PostgresClient(databaseURL: try await TestPostgres.shared.makeMigratedDatabase())
        defer { client.close() }
        try await client.withConnection { try $0.executeScript(Self.setup) }
        let groups = [
            group("anon", [:]),
            group("authenticated", ["sub": "alice"]),
            group("authenticated", ["sub": "bob", "team": "red"]),
            group("authenticated", ["sub": "nobody"]),
            group("service_role", [:]),
        ]
        let keys: [JSONObject] = [["id": 1], ["id": 2], ["id": 3], ["id": 4]]
        // Twice: the second call runs the probe prepared by the first.
        for _ in 0..<2 {
            let answers = try await ask(client, [
                VisibilityCheck(schema: "public", table: "notes", keys: keys, groups: groups),
                VisibilityCheck(schema: "public", table: "open", keys: [["id": 7]], groups: [groups[0]]),
                VisibilityCheck(schema: "public", table: "keyless", keys: [], groups: [groups[1]]),
            ])
            let notes = answers[0]
            #expect(notes.primaryKey == ["id"] && notes.rowSecurity)
            // A policy that fails hides the rows; row 4 does not exist.
            #expect(notes.visible == [[], [0], [0, 1, 2], [], [0, 1, 2]])
            #expect(notes.columnsByRole["authenticated"] == ["id", "owner", "team"])
            #expect(notes.columnsByRole["service_role"] == ["id", "owner", "team", "secret"])
            #expect(answers[1] == VisibilityAnswer(primaryKey: ["id"], rowSecurity: false, columnsByRole: ["anon": ["id", "body"]], visible: [nil]))
            #expect(answers[2].primaryKey.isEmpty && answers[2].columnsByRole["authenticated"] == ["body"])
        }
        // Checks leave the session as it was.
        #expect(try await client.query("SELECT current_user, current_setting('request.jwt.claims', true)").values[0] == ["postgres", ""])

        // A role that does not exist sees nothing and is reported; the others are still answered.
        let answers = try await ask(client, [VisibilityCheck(schema: "public", table: "notes", keys: keys, groups: [group("nosuch", [:]), groups[1]])])
        #expect(answers[0].visible == [[], [0]])
        let raw = try await client.query("SELECT realtime.visible_rows($1::jsonb)->0->'errors'->>'nosuch'", [
            VisibilityCheck.requestJSON([VisibilityCheck(schema: "public", table: "notes", keys: [], groups: [group("nosuch", [:])])])
        ])
        #expect(raw.values[0][0] == #"role "nosuch" does not exist"#)

        let roles = try await client.query("SELECT realtime.can_assume_role('authenticated')::text, realtime.can_assume_role('nosuch')::text")
        #expect(roles.values[0] == ["true", "false"])
        let bypass = try await client.query("SELECT rolbypassrls::text FROM pg_roles WHERE rolname = 'service_role'")
        #expect(bypass.values[0][0] == "true")
    }

    @Test func keysThatAreNotSQLStayValues() async throws {
        let client = PostgresClient(databaseURL: try await TestPostgres.shared.makeMigratedDatabase())
        defer { client.close() }
        try await client.withConnection { try $0.executeScript("CREATE TABLE tagged (tag text PRIMARY KEY); ALTER TABLE tagged ENABLE ROW LEVEL SECURITY; CREATE POLICY everyone ON tagged FOR SELECT USING (true); INSERT INTO tagged VALUES ('x'')); DROP TABLE tagged; --');") }
        let hostile: JSONObject = ["tag": "x')); DROP TABLE tagged; --"]
        let answers = try await ask(client, [VisibilityCheck(schema: "public", table: "tagged", keys: [hostile, ["tag": "y"]], groups: [group("authenticated", ["sub": "'; SELECT 1; --"])])])
        #expect(answers[0].visible == [[0]])
        #expect(try await client.query("SELECT count(*) FROM tagged").values[0][0] == "1")
    }
}
