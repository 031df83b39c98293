import HeraldCore

/// What ``PGConnection/prepareReplication(slot:publication:)`` found or did.
public struct ReplicationPreparation: Sendable, Equatable {
    /// The publication did not exist and was created (empty).
    public var publicationCreated: Bool
    /// The slot did not exist and was created: changes are captured from this moment on.
    public var slotCreated: Bool
    /// The slot's `confirmed_flush_lsn`: where streaming resumes.
    public var confirmedFlush: LSN

    public init(publicationCreated: Bool, slotCreated: Bool, confirmedFlush: LSN) {
        self.publicationCreated = publicationCreated
        self.slotCreated = slotCreated
        self.confirmedFlush = confirmedFlush
    }
}

extension PGConnection {
    /// Creates the publication (empty) and the permanent logical slot (plugin `pgoutput`) when they are missing.
    /// Creating a slot waits for the transactions running in the cluster to end.
    /// - Throws: ``PostgresError``, also when a slot of that name exists but is not a `pgoutput` slot of this
    ///   database.
    public func prepareReplication(slot: String, publication: String) throws(PostgresError) -> ReplicationPreparation {
        let publicationCreated = try ReplicationSetup.ensurePublication(publication, on: self)
        let slot = try ReplicationSetup.ensureSlot(slot, on: self)
        return ReplicationPreparation(publicationCreated: publicationCreated, slotCreated: slot.created, confirmedFlush: slot.confirmedFlush)
    }
}

/// The catalog work around a replication stream, on an ordinary connection: the publication, the slot, and
/// the `pg_type` rows that say how columns convert to JSON.
enum ReplicationSetup {
    /// The slot as it stands before streaming.
    struct Slot {
        /// `true` when it did not exist and was created now.
        var created: Bool
        /// `confirmed_flush_lsn`: where streaming resumes, and the lowest position Herald may confirm.
        var confirmedFlush: LSN
    }

    /// Creates the publication (empty) when it does not exist; `true` when it was created.
    static func ensurePublication(_ name: String, on connection: PGConnection) throws(PostgresError) -> Bool {
        guard try connection.execute("SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1", params: [name]).isEmpty else {
            return false
        }
        do throws(PostgresError) {
            _ = try connection.execute("CREATE PUBLICATION " + connection.escapeIdentifier(name))
            return true
        } catch {
            guard error.sqlState == "42710" else { throw error }
            return false  // Another Herald created it in between.
        }
    }

    /// Creates the permanent logical slot (plugin `pgoutput`) when it does not exist.
    /// - Throws: ``PostgresError`` when a slot of that name exists but is not a `pgoutput` slot of this database.
    static func ensureSlot(_ name: String, on connection: PGConnection) throws(PostgresError) -> Slot {
        let existing = try connection.execute(
            """
            SELECT plugin, database = current_database() AS here, confirmed_flush_lsn::text
              FROM pg_catalog.pg_replication_slots WHERE slot_name = $1
            """,
            params: [name]
        )
        if let slot = existing.first {
            guard slot["plugin"] == "pgoutput", slot["here"] == "t", let position = slot["confirmed_flush_lsn"].flatMap(LSN.init) else {
                throw PostgresError(
                    code: .server,
                    message: "replication slot \"\(name)\" exists but is not a logical pgoutput slot of this database: choose another slot name"
                )
            }
            return Slot(created: false, confirmedFlush: position)
        }
        do throws(PostgresError) {
            let created = try connection.execute("SELECT lsn::text FROM pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput')", params: [name])
            return Slot(created: true, confirmedFlush: created.first?["lsn"].flatMap(LSN.init) ?? .zero)
        } catch {
            guard error.sqlState == "42710" else { throw error }
            return try ensureSlot(name, on: connection)  // Another Herald created it in between.
        }
    }

    /// Looks up the types `relation` needs that `assembler` does not know yet. Types that no longer exist
    /// stay unknown (their values are sent as strings).
    static func learnTypes(for relation: PgOutputMessage.Relation, into assembler: inout ChangeAssembler, on connection: PGConnection) throws(PostgresError) {
        var missing = assembler.missingTypes(for: relation)
        while !missing.isEmpty {
            let rows = try connection.execute(PgTypeCatalog.entriesQuery, params: ["{" + missing.map(String.init).joined(separator: ",") + "}"])
            let entries = rows.values.compactMap(PgTypeCatalog.entry(row:))
            guard !entries.isEmpty else { return }
            assembler.learn(types: entries)
            missing = assembler.missingTypes(for: relation)
        }
    }

    /// `true` for names PostgreSQL accepts for slots (lower-case letters, digits, underscores, at most 63),
    /// which Herald also requires of publication names so that they need no quoting in `START_REPLICATION`.
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 63
            && name.utf8.allSatisfy { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_") }
    }
}
