import HeraldCore
import HeraldPostgres
import HeraldTestSupport
import Testing

/// The trigger source (`realtime.capture_changes()` + NOTIFY) and the replication source (pgoutput) must turn the
/// same statements into the same ``Change`` values, apart from commit timestamps.
@Suite("Change source equivalence", .serialized)
struct SourceEquivalenceTests {
    static let schema = """
        CREATE TYPE mood AS ENUM ('happy', 'sad');
        CREATE DOMAIN posint AS int CHECK (VALUE > 0);
        CREATE TABLE kinds (
          id int PRIMARY KEY,
          i2 int2, i4 int4, i8 int8, n numeric, n2 numeric(10,2), f4 float4, f8 float8,
          b bool, t text, vc varchar(20), u uuid, j json, jb jsonb,
          ts timestamp, tstz timestamptz, d date, tm time, tmtz timetz, by bytea, m mood, dom posint,
          ai int[], at text[], ajb jsonb[], ats timestamp[], a2 int[][], iv interval, ch char(3), moods mood[]
        );
        CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL UNIQUE, name text);
        ALTER TABLE people REPLICA IDENTITY FULL;
        CREATE TABLE badges (id int PRIMARY KEY, code text NOT NULL, label text);
        CREATE UNIQUE INDEX badges_code ON badges (code);
        ALTER TABLE badges REPLICA IDENTITY USING INDEX badges_code;
        SELECT realtime.enable_capture('kinds');
        SELECT realtime.enable_capture('people');
        SELECT realtime.enable_capture('badges');
        CREATE PUBLICATION herald FOR TABLE messages, kinds, people, badges;
        """

    /// Each string is one transaction.
    static let transactions = [
        """
        INSERT INTO kinds VALUES (1, -32768, 2147483647, -9223372036854775808, 12345678901234567890.123456789, 3.10, 1.5, 0.1,
          true, 'hé "q" \\ x', 'vc', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2.50], "b" : null}', '{"z": 1, "a": {"b": [true, "x"]}}',
          '2026-01-01 10:00:00', '2026-01-01 10:00:00.123456+00', '2026-01-01', '10:00:00', '10:00:00+02', '\\x0102ff', 'happy', 5,
          '{1,2,NULL}', '{"a b","c,d","","NULL",NULL,"q\\"x","back\\\\slash"}', ARRAY['{"k": 1}'::jsonb, NULL], '{"2026-01-01 10:00:00"}',
          '{{1,2},{3,4}}', '1 day 02:00:00', 'ab', '{happy,sad}')
        """,
        "INSERT INTO kinds (id, f4, f8, n) VALUES (2, 'NaN', '-Infinity', 'NaN'), (3, 1e-7, 'Infinity', 'Infinity')",
        """
        INSERT INTO kinds (id, f8, ts, d, tstz, ai, tm) VALUES
          (4, 1e100, '0044-03-15 10:00:00 BC', '0044-03-15 BC', '2026-06-01 10:00:00+05:30', '[0:1]={7,8}', '23:59:59.999999'),
          (5, -0.0, 'infinity', '-infinity', '-infinity', '{}', NULL)
        """,
        "UPDATE kinds SET t = 'changed', jb = '[]' WHERE id = 1",
        "UPDATE kinds SET id = 10 WHERE id = 2",
        "DELETE FROM kinds WHERE id = 3",
        "INSERT INTO people VALUES (1, 'a@example.com', 'Ann'), (2, 'b@example.com', NULL)",
        "UPDATE people SET name = 'Anne' WHERE id = 1; DELETE FROM people WHERE id = 2",
        "INSERT INTO badges VALUES (1, 'gold', 'Gold'); UPDATE badges SET label = 'Golden'; UPDATE badges SET code = 'au'; DELETE FROM badges",
        """
        INSERT INTO messages (id, room_id, sender_id, content, created_at)
          VALUES ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000aa', '00000000-0000-0000-0000-0000000000bb',
                  repeat('long ', 2000), '2026-01-01 10:00:00+00');
        UPDATE messages SET edited_at = '2026-01-01 11:00:00+00', content = 'short';
        DELETE FROM messages
        """,
    ]

    @Test func bothSourcesProduceTheSameChanges() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let writer = TestSQL(url: url)
        try await writer.executeScript(Self.schema)
        // row_to_json prints timestamptz in the writer's time zone; the replication source prints UTC.
        _ = try await writer.execute("SET TimeZone = 'UTC'")
        let expectedCount = 19
        var fromTriggers: [Change] = []
        var fromReplication: [Change] = []
        try await withReplication(url: url) { replication, _ in
            try await withListener(url: url, channels: ["herald_changes"]) { notifications in
                for transaction in Self.transactions {
                    try await writer.executeScript("BEGIN; \(transaction); COMMIT;")
                }
                for _ in 0..<expectedCount {
                    let payload = try TriggerPayload(json: Array(try await notifications.nextPayload().utf8))
                    fromTriggers.append(payload.change(commitTimestamp: 0))
                }
                while fromReplication.count < expectedCount {
                    for var change in try await replication.nextChanges() {
                        change.commitTimestamp = 0
                        fromReplication.append(change)
                    }
                }
            }
        }
        #expect(fromReplication.count == expectedCount)
        for (trigger, replicated) in zip(fromTriggers, fromReplication) {
            #expect(trigger == replicated)
        }
    }
}
