import HeraldCore

/// How a publication's table list changes to match the tables Herald captures.
///
/// Tables without a usable replica identity (identity NOTHING, or DEFAULT without a primary key, or INDEX
/// without its index) are kept out: once published, their UPDATEs and DELETEs would fail for every writer
/// ("cannot update table ... because it does not have a replica identity and publishes updates").
public struct PublicationPlan: Sendable, Equatable {
    /// Tables to add to the publication.
    public var add: [TableName]
    /// Tables to remove from it.
    public var drop: [TableName]
    /// Wanted tables left out because they have no replica identity.
    public var withoutIdentity: [TableName]

    public init(add: [TableName], drop: [TableName], withoutIdentity: [TableName]) {
        self.add = add
        self.drop = drop
        self.withoutIdentity = withoutIdentity
    }

    /// The plan that turns `current` into `wanted`, minus the tables in `withoutIdentity`.
    public static func plan(current: [TableName], wanted: [TableName], withoutIdentity: Set<TableName>) -> PublicationPlan {
        let publishable = wanted.filter { !withoutIdentity.contains($0) }
        let currentSet = Set(current)
        let publishableSet = Set(publishable)
        return PublicationPlan(
            add: publishable.filter { !currentSet.contains($0) },
            drop: current.filter { !publishableSet.contains($0) },
            withoutIdentity: wanted.filter { withoutIdentity.contains($0) }
        )
    }
}

extension PGConnection {
    /// Makes publication `name` publish exactly `tables` (those with a replica identity), creating it when
    /// missing, and returns what was done. A publication `FOR ALL TABLES` is left as it is.
    public func synchronizePublication(_ name: String, tables: [TableName]) throws(PostgresError) -> PublicationPlan {
        _ = try ReplicationSetup.ensurePublication(name, on: self)
        let allTables = try execute("SELECT puballtables FROM pg_catalog.pg_publication WHERE pubname = $1", params: [name])
        if allTables.first?["puballtables"] == "t" {
            return PublicationPlan(add: [], drop: [], withoutIdentity: [])
        }
        let current = Self.tableNames(
            try execute("SELECT schemaname::text, tablename::text FROM pg_catalog.pg_publication_tables WHERE pubname = $1", params: [name])
        )
        let plan = PublicationPlan.plan(current: current, wanted: tables, withoutIdentity: try tablesWithoutIdentity(tables))
        let publication = try escapeIdentifier(name)
        if !plan.add.isEmpty {
            _ = try execute("ALTER PUBLICATION \(publication) ADD TABLE " + qualifiedNames(plan.add))
        }
        if !plan.drop.isEmpty {
            _ = try execute("ALTER PUBLICATION \(publication) DROP TABLE " + qualifiedNames(plan.drop))
        }
        return plan
    }

    private func tablesWithoutIdentity(_ tables: [TableName]) throws(PostgresError) -> Set<TableName> {
        guard !tables.isEmpty else { return [] }
        let rows = try execute(
            """
            SELECT n.nspname::text, c.relname::text
              FROM pg_catalog.pg_class c
              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              JOIN unnest($1::text[], $2::text[]) AS wanted(schema_name, table_name)
                ON wanted.schema_name = n.nspname AND wanted.table_name = c.relname
             WHERE c.relreplident = 'n'
                OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
                OR (c.relreplident = 'i' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisreplident))
            """,
            params: [Self.textArray(tables.map(\.schema)), Self.textArray(tables.map(\.table))]
        )
        return Set(Self.tableNames(rows))
    }

    /// Rows of (schema, table).
    private static func tableNames(_ rows: PGRows) -> [TableName] {
        rows.values.compactMap { row in
            guard row.count == 2, let schema = row[0], let table = row[1] else { return nil }
            return TableName(schema: schema, table: table)
        }
    }

    private func qualifiedNames(_ tables: [TableName]) throws(PostgresError) -> String {
        var names: [String] = []
        for table in tables {
            names.append(try escapeIdentifier(table.schema) + "." + escapeIdentifier(table.table))
        }
        return names.joined(separator: ", ")
    }

    /// A `text[]` literal: every element quoted, quotes and backslashes escaped.
    private static func textArray(_ values: [String]) -> String {
        "{" + values.map { "\"" + $0.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\"" }.joined(separator: ",") + "}"
    }
}
