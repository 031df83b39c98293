import Foundation
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
            #expect(notes.claimKeys == ["sub", "team"] && !notes.stale)
            #expect(answers[1] == VisibilityAnswer(primaryKey: ["id"], rowSecurity: false, claimKeys: [], columnsByRole: ["anon": ["id", "body"]], visible: [nil]))
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

    /// Each session keeps one probe per table: a renamed table or a new primary key must get a new one, or the
    /// probe would match rows by the old key (and show alice a row of bob's that shares her row's `id`).
    @Test func aProbeFollowsRenamesAndNewKeys() async throws {
        let client = PostgresClient(databaseURL: try await TestPostgres.shared.makeMigratedDatabase())
        defer { client.close() }
        let alice = group("authenticated", ["sub": "alice"])
        let bob = group("authenticated", ["sub": "bob"])
        try await client.withConnection { connection in
            // Columns named like the probe's parameters and variables must not confuse it.
            try connection.executeScript("""
                CREATE TABLE shared (id int PRIMARY KEY, part int, owner text, rows_to_check int, visible text, claims text);
                GRANT SELECT ON shared TO authenticated;
                ALTER TABLE shared ENABLE ROW LEVEL SECURITY;
                CREATE POLICY own ON shared FOR SELECT USING (owner = current_setting('request.jwt.claims', true)::jsonb ->> 'sub');
                INSERT INTO shared (id, part, owner) VALUES (1, 1, 'alice');
                """)
            func ask(_ table: String, _ key: JSONObject) throws -> [Set<Int>?] {
                let request = VisibilityCheck.requestJSON([VisibilityCheck(schema: "public", table: table, keys: [key], groups: [alice, bob])])
                let rows = try connection.execute("SELECT realtime.visible_rows($1::jsonb)::text", params: [request])
                return try VisibilityAnswer.parse(rows.values[0][0] ?? "")[0].visible
            }
            #expect(try ask("shared", ["id": 1]) == [[0], []])
            try connection.executeScript("""
                ALTER TABLE shared DROP CONSTRAINT shared_pkey, ADD PRIMARY KEY (id, part);
                INSERT INTO shared (id, part, owner) VALUES (1, 2, 'bob');
                """)
            #expect(try ask("shared", ["id": 1, "part": 2]) == [[], [0]])
            try connection.executeScript("ALTER TABLE shared RENAME TO renamed")
            #expect(try ask("renamed", ["id": 1, "part": 1]) == [[0], []])
        }
    }

    static let claimSetup = """
        CREATE SCHEMA auth;
        CREATE FUNCTION auth.uid() RETURNS text LANGUAGE sql STABLE AS $$
            select nullif(coalesce(current_setting('request.jwt.claim.sub', true), (current_setting('request.jwt.claims', true)::jsonb ->> 'sub')), '')::text $$;
        CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$
            select coalesce(nullif(current_setting('request.jwt.claim', true), ''), nullif(current_setting('request.jwt.claims', true), ''))::jsonb $$;
        CREATE FUNCTION sneaky() RETURNS text LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN current_setting('request.jwt.claims', true); END $$;
        CREATE FUNCTION wrapped() RETURNS text LANGUAGE sql STABLE AS $$ select sneaky() $$;
        CREATE TABLE members (room int, user_id text);
        ALTER TABLE members ENABLE ROW LEVEL SECURITY;
        CREATE POLICY own ON members FOR SELECT USING (user_id = auth.uid());
        CREATE VIEW rooms AS SELECT DISTINCT room FROM members;
        CREATE FUNCTION make_table(name text, policy text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN
            EXECUTE format('CREATE TABLE %I (id int PRIMARY KEY, team text, room int, level int)', name);
            EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', name);
            IF policy IS NOT NULL THEN EXECUTE format('CREATE POLICY p ON %I FOR SELECT USING (%s)', name, policy); END IF;
        END $$;
        SELECT make_table('by_team', $$team = current_setting('request.jwt.claims', true)::jsonb ->> 'team'$$);
        SELECT make_table('by_json_team', $$team = (current_setting('request.jwt.claims')::json -> 'app' ->> 'team')$$);
        SELECT make_table('by_legacy_sub', $$team = current_setting('request.jwt.claim.sub', true)$$);
        SELECT make_table('by_uid', $$team = (SELECT auth.uid())$$);
        SELECT make_table('by_membership', $$room IN (SELECT room FROM members WHERE level > 0)$$);
        SELECT make_table('by_team_and_level', $$team = current_setting('request.jwt.claims', true)::jsonb ->> 'team'
            AND level <= (current_setting('request.jwt.claims', true)::jsonb ->> 'level')::int$$);
        SELECT make_table('no_policy', NULL);
        SELECT make_table('by_whole_claims', $$current_setting('request.jwt.claims', true)::jsonb ? 'admin'$$);
        SELECT make_table('by_jwt', $$team = auth.jwt() ->> 'team'$$);
        SELECT make_table('by_plpgsql', $$team = sneaky()$$);
        SELECT make_table('by_sql_calling_plpgsql', $$team = wrapped()$$);
        SELECT make_table('by_view', $$room IN (SELECT room FROM rooms)$$);
        SELECT make_table('by_computed_setting', $$team = current_setting('request.' || 'jwt.claims', true)$$);
        """

    @Test func policiesNameTheClaimsTheyRead() async throws {
        let client = PostgresClient(databaseURL: try await TestPostgres.shared.makeMigratedDatabase())
        defer { client.close() }
        try await client.withConnection { try $0.executeScript(Self.claimSetup) }
        let expected: [(String, String?)] = [
            ("by_team", "{team}"),
            ("by_json_team", "{app}"),
            ("by_legacy_sub", "{sub}"),
            ("by_uid", "{sub}"),
            // The subquery reads members, whose own policy reads the claims through auth.uid().
            ("by_membership", "{sub}"),
            ("by_team_and_level", "{level,team}"),
            ("no_policy", "{}"),
            // Claims read whole, or by code Herald does not follow: every distinct set of claims is its own group.
            ("by_whole_claims", nil),
            ("by_jwt", nil),
            ("by_plpgsql", nil),
            ("by_sql_calling_plpgsql", nil),
            ("by_view", nil),
            ("by_computed_setting", nil),
        ]
        for (table, keys) in expected {
            let found = try await client.query("SELECT realtime.policy_claim_keys($1::regclass)::text", [table]).values[0][0]
            #expect(found == keys, "\(table)")
        }
    }

    /// The session remembers each table's claim keys with a fingerprint of the catalog rows they were read from:
    /// every change of a policy, of a function a policy calls, or of RLS on a table a policy reads is seen at once.
    @Test func rememberedClaimKeysFollowEveryChangeTheyDependOn() async throws {
        let client = PostgresClient(databaseURL: try await TestPostgres.shared.makeMigratedDatabase())
        defer { client.close() }
        try await client.withConnection { connection in
            try connection.executeScript(Self.claimSetup + "CREATE TABLE levels (level int, team text);")
            func keys(_ table: String) throws -> String? {
                try connection.execute("SELECT realtime.policy_claim_keys($1::regclass)::text", params: [table]).values[0][0]
            }
            let steps: [(change: String, table: String, expected: String?)] = [
                ("", "by_team", "{team}"),
                ("ALTER POLICY p ON by_team USING (team = current_setting('request.jwt.claims', true)::jsonb ->> 'org')", "by_team", "{org}"),
                ("DROP POLICY p ON by_team", "by_team", "{}"),
                ("CREATE POLICY q ON by_team FOR SELECT USING (team = auth.jwt() ->> 'team')", "by_team", nil),
                ("", "by_uid", "{sub}"),
                ("""
                    CREATE OR REPLACE FUNCTION auth.uid() RETURNS text LANGUAGE sql STABLE AS $$
                        select current_setting('request.jwt.claims', true)::jsonb ->> 'user_id' $$
                    """, "by_uid", "{user_id}"),
                ("ALTER POLICY p ON by_team_and_level USING (level IN (SELECT level FROM levels))", "by_team_and_level", "{}"),
                ("""
                    ALTER TABLE levels ENABLE ROW LEVEL SECURITY;
                    CREATE POLICY mine ON levels FOR SELECT USING (team = current_setting('request.jwt.claims', true)::jsonb ->> 'team')
                    """, "by_team_and_level", "{team}"),
                ("ALTER POLICY mine ON levels USING (true)", "by_team_and_level", "{}"),
            ]
            for step in steps {
                if !step.change.isEmpty { try connection.executeScript(step.change) }
                // Twice: the first answer is computed and remembered, the second comes from memory.
                for _ in 0..<2 { #expect(try keys(step.table) == step.expected, "\(step.change)") }
            }
        }
    }

    @Test func groupsCarryingFewerClaimsThanThePoliciesReadAreStale() async throws {
        let client = PostgresClient(databaseURL: try await TestPostgres.shared.makeMigratedDatabase())
        defer { client.close() }
        try await client.withConnection {
            try $0.executeScript(Self.claimSetup + "GRANT SELECT ON by_team, by_whole_claims TO authenticated; INSERT INTO by_team VALUES (1, 'red'), (2, 'blue'); CREATE TABLE plain (id int PRIMARY KEY); GRANT SELECT ON plain TO authenticated;")
        }
        let red = group("authenticated", ["team": "red"])
        let blue = group("authenticated", ["team": "blue"])
        let keys: [JSONObject] = [["id": 1], ["id": 2]]
        // Groups merged down to the claim the policy reads are answered.
        let merged = try await ask(client, [VisibilityCheck(schema: "public", table: "by_team", keys: keys, groups: [red, blue], claimKeys: ["team"])])
        #expect(merged[0].visible == [[0], [1]] && !merged[0].stale && merged[0].claimKeys == ["team"])
        // Groups that lack a claim the policies read are not: the caller must regroup.
        let stale = try await ask(client, [
            VisibilityCheck(schema: "public", table: "by_team", keys: keys, groups: [red], claimKeys: ["sub"]),
            VisibilityCheck(schema: "public", table: "by_whole_claims", keys: [["id": 1]], groups: [red], claimKeys: ["team"]),
            VisibilityCheck(schema: "public", table: "plain", keys: [["id": 1]], groups: [red], claimKeys: []),
        ])
        #expect(stale.map(\.stale) == [true, true, false])
        #expect(stale[0].visible == [[]] && stale[0].claimKeys == ["team"])
        #expect(stale[1].claimKeys == nil)
        // Without RLS no claim matters: groups need only their role.
        #expect(stale[2].claimKeys == [] && stale[2].visible == [nil])
    }

    /// A change can arrive from the WAL before its transaction is visible to new snapshots; the check waits for the
    /// transactions it names, so the row is not hidden from everyone. (The writer commits once the check is seen
    /// waiting, well inside the check's 2 s limit.) An older transaction still running puts the writer's id past
    /// the snapshots' xmax, as concurrent writers do: the check must wait for it all the same.
    @Test func aCheckWaitsUntilTheWritingTransactionIsVisible() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let client = PostgresClient(databaseURL: url)
        defer { client.close() }
        try await client.withConnection {
            try $0.executeScript("CREATE TABLE late (id int PRIMARY KEY); ALTER TABLE late ENABLE ROW LEVEL SECURITY; CREATE POLICY everyone ON late FOR SELECT USING (true);")
        }
        let older = HeldTransaction(url: url, name: "older writer", statement: "SELECT 1")
        try await older.open()
        let writer = HeldTransaction(url: url, name: "late writer", statement: "INSERT INTO late VALUES (1)")
        try await writer.open()
        let check = VisibilityCheck(
            schema: "public", table: "late", keys: [["id": 1]], groups: [group("authenticated", [:])], transactionIDs: [try #require(writer.transactionID)]
        )
        async let answers = ask(client, [check])
        let watcher = PostgresClient(databaseURL: url)
        defer { watcher.close() }
        var waiting = false
        let deadline = ContinuousClock.now + .seconds(20)
        while !waiting && ContinuousClock.now < deadline {
            let rows = try await watcher.query(
                "SELECT count(*)::text FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep' AND query LIKE '%visible_rows%'"
            )
            waiting = rows.values.first?.first == "1"
        }
        #expect(waiting, "the check never waited for the open transaction")
        try await writer.commit()
        #expect(try await answers[0].visible == [[0]])
        try await older.commit()
    }
}
