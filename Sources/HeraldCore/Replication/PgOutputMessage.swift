/// One message of PostgreSQL's `pgoutput` logical decoding plugin (the payload of an XLogData message),
/// protocol version 1, plus the streaming markers of version 2.
/// Reference: "Logical Replication Message Formats" in the PostgreSQL manual.
public indirect enum PgOutputMessage: Sendable, Equatable {
    /// 'B': a transaction starts; its changes follow, then ``commit(_:)``.
    case begin(Begin)
    /// 'C': the transaction committed.
    case commit(Commit)
    /// 'O': the transaction was replicated from another node (`pg_replication_origin`).
    case origin(Origin)
    /// 'R': a table's description, sent before its first change and after it changes.
    case relation(Relation)
    /// 'Y': a non-built-in type used by a relation (for a domain: its base type's name).
    case type(TypeDescription)
    /// 'I'
    case insert(Insert)
    /// 'U'
    case update(Update)
    /// 'D'
    case delete(Delete)
    /// 'T'
    case truncate(Truncate)
    /// 'M': `pg_logical_emit_message` output (only with the `messages` option).
    case message(LogicalMessage)
    /// 'S' (version 2): the messages up to ``streamStop`` belong to the in-progress transaction `transactionID`.
    case streamStart(transactionID: UInt32, isFirstSegment: Bool)
    /// 'E' (version 2): the current stream block ends.
    case streamStop
    /// 'c' (version 2): the streamed transaction `transactionID` committed.
    case streamCommit(transactionID: UInt32, Commit)
    /// 'A' (version 2): the streamed (sub)transaction aborted.
    case streamAbort(transactionID: UInt32, subtransactionID: UInt32)
    /// A message inside a stream block, which carries the transaction id of its (sub)transaction.
    case streamed(transactionID: UInt32, PgOutputMessage)

    public struct Begin: Sendable, Equatable {
        /// The LSN of the commit record.
        public var finalLSN: LSN
        /// Microseconds since 2000-01-01 UTC.
        public var commitTime: Int64
        public var transactionID: UInt32

        public init(finalLSN: LSN, commitTime: Int64, transactionID: UInt32) {
            self.finalLSN = finalLSN
            self.commitTime = commitTime
            self.transactionID = transactionID
        }
    }

    public struct Commit: Sendable, Equatable {
        public var flags: UInt8
        /// The LSN of the commit record.
        public var commitLSN: LSN
        /// The end of the commit record: the position to confirm once the transaction is handled.
        public var endLSN: LSN
        /// Microseconds since 2000-01-01 UTC.
        public var commitTime: Int64

        public init(flags: UInt8, commitLSN: LSN, endLSN: LSN, commitTime: Int64) {
            self.flags = flags
            self.commitLSN = commitLSN
            self.endLSN = endLSN
            self.commitTime = commitTime
        }
    }

    public struct Origin: Sendable, Equatable {
        /// The commit LSN on the origin server.
        public var commitLSN: LSN
        public var name: String

        public init(commitLSN: LSN, name: String) {
            self.commitLSN = commitLSN
            self.name = name
        }
    }

    public struct Relation: Sendable, Equatable {
        public var id: UInt32
        /// `pg_catalog` when the server sent an empty name.
        public var namespace: String
        public var name: String
        public var replicaIdentity: ReplicaIdentity
        public var columns: [Column]

        public init(id: UInt32, namespace: String, name: String, replicaIdentity: ReplicaIdentity, columns: [Column]) {
            self.id = id
            self.namespace = namespace
            self.name = name
            self.replicaIdentity = replicaIdentity
            self.columns = columns
        }

        public struct Column: Sendable, Equatable {
            /// Part of the replica identity (the key sent in old tuples).
            public var isKey: Bool
            public var name: String
            public var typeOID: UInt32
            public var typeModifier: Int32

            public init(isKey: Bool, name: String, typeOID: UInt32, typeModifier: Int32) {
                self.isKey = isKey
                self.name = name
                self.typeOID = typeOID
                self.typeModifier = typeModifier
            }
        }
    }

    /// `pg_class.relreplident`.
    public enum ReplicaIdentity: UInt8, Sendable, Equatable {
        case `default` = 0x64  // d
        case nothing = 0x6E  // n
        case full = 0x66  // f
        case index = 0x69  // i
    }

    public struct TypeDescription: Sendable, Equatable {
        public var oid: UInt32
        /// `pg_catalog` when the server sent an empty name.
        public var namespace: String
        public var name: String

        public init(oid: UInt32, namespace: String, name: String) {
            self.oid = oid
            self.namespace = namespace
            self.name = name
        }
    }

    public struct Insert: Sendable, Equatable {
        public var relationID: UInt32
        public var newTuple: [TupleValue]

        public init(relationID: UInt32, newTuple: [TupleValue]) {
            self.relationID = relationID
            self.newTuple = newTuple
        }
    }

    public struct Update: Sendable, Equatable {
        public var relationID: UInt32
        /// The old key ('K', identity columns only) or the whole old row ('O', `REPLICA IDENTITY FULL`);
        /// absent when the key did not change.
        public var oldTuple: OldTuple?
        public var newTuple: [TupleValue]

        public init(relationID: UInt32, oldTuple: OldTuple?, newTuple: [TupleValue]) {
            self.relationID = relationID
            self.oldTuple = oldTuple
            self.newTuple = newTuple
        }
    }

    public struct Delete: Sendable, Equatable {
        public var relationID: UInt32
        public var oldTuple: OldTuple

        public init(relationID: UInt32, oldTuple: OldTuple) {
            self.relationID = relationID
            self.oldTuple = oldTuple
        }
    }

    /// The old row of an UPDATE or DELETE, as the table's replica identity defines it.
    public enum OldTuple: Sendable, Equatable {
        /// 'K': every column is sent, but only the key columns carry values.
        case key([TupleValue])
        /// 'O': the whole old row.
        case full([TupleValue])
    }

    public struct Truncate: Sendable, Equatable {
        /// Bit 1: CASCADE, bit 2: RESTART IDENTITY.
        public var options: UInt8
        public var relationIDs: [UInt32]

        public init(options: UInt8, relationIDs: [UInt32]) {
            self.options = options
            self.relationIDs = relationIDs
        }
    }

    public struct LogicalMessage: Sendable, Equatable {
        public var isTransactional: Bool
        public var lsn: LSN
        public var prefix: String
        public var content: [UInt8]

        public init(isTransactional: Bool, lsn: LSN, prefix: String, content: [UInt8]) {
            self.isTransactional = isTransactional
            self.lsn = lsn
            self.prefix = prefix
            self.content = content
        }
    }
}

/// One column value of a tuple.
public enum TupleValue: Sendable, Equatable {
    /// 'n': SQL NULL (in a 'K' tuple also a column that is not part of the key).
    case null
    /// 'u': a TOASTed value that did not change; the value itself is not sent.
    case unchangedToast
    /// 't': the value in the type's text output format.
    case text(String)
}

extension PgOutputMessage {
    /// Decodes one message. `inStreamBlock` says whether it sits between Stream Start and Stream Stop
    /// (protocol version 2), where data messages carry a transaction id.
    public static func decode(_ bytes: ArraySlice<UInt8>, inStreamBlock: Bool = false) throws(ReplicationDecodingError) -> PgOutputMessage {
        var reader = ByteReader(bytes)
        let tag = try reader.byte()
        let message: PgOutputMessage
        switch tag {
        case UInt8(ascii: "B"):
            message = .begin(Begin(finalLSN: try reader.lsn(), commitTime: try reader.int64(), transactionID: try reader.uint32()))
        case UInt8(ascii: "C"):
            message = .commit(try commit(&reader))
        case UInt8(ascii: "O"):
            message = .origin(Origin(commitLSN: try reader.lsn(), name: try reader.cString()))
        case UInt8(ascii: "S"):
            message = .streamStart(transactionID: try reader.uint32(), isFirstSegment: try reader.byte() == 1)
        case UInt8(ascii: "E"):
            message = .streamStop
        case UInt8(ascii: "c"):
            let transactionID = try reader.uint32()
            message = .streamCommit(transactionID: transactionID, try commit(&reader))
        case UInt8(ascii: "A"):
            // Version 4 (parallel apply) appends the abort LSN and time, which Herald does not use.
            message = .streamAbort(transactionID: try reader.uint32(), subtransactionID: try reader.uint32())
            _ = reader.rest()
        case UInt8(ascii: "R"), UInt8(ascii: "Y"), UInt8(ascii: "I"), UInt8(ascii: "U"), UInt8(ascii: "D"),
            UInt8(ascii: "T"), UInt8(ascii: "M"):
            // Inside a stream block these carry the transaction id first.
            if inStreamBlock {
                let transactionID = try reader.uint32()
                message = .streamed(transactionID: transactionID, try data(tag: tag, &reader))
            } else {
                message = try data(tag: tag, &reader)
            }
        default:
            throw ReplicationDecodingError("unknown pgoutput message '\(String(decoding: [tag], as: UTF8.self))'")
        }
        guard reader.isAtEnd else { throw ReplicationDecodingError("trailing bytes after a '\(String(decoding: [tag], as: UTF8.self))' message") }
        return message
    }

    private static func commit(_ reader: inout ByteReader) throws(ReplicationDecodingError) -> Commit {
        Commit(flags: try reader.byte(), commitLSN: try reader.lsn(), endLSN: try reader.lsn(), commitTime: try reader.int64())
    }

    /// The messages that describe data, after their tag (and stream transaction id).
    private static func data(tag: UInt8, _ reader: inout ByteReader) throws(ReplicationDecodingError) -> PgOutputMessage {
        let message: PgOutputMessage
        switch tag {
        case UInt8(ascii: "R"):
            message = .relation(try relation(&reader))
        case UInt8(ascii: "Y"):
            message = .type(TypeDescription(oid: try reader.uint32(), namespace: namespace(try reader.cString()), name: try reader.cString()))
        case UInt8(ascii: "I"):
            let relationID = try reader.uint32()
            try expect(UInt8(ascii: "N"), from: &reader)
            message = .insert(Insert(relationID: relationID, newTuple: try tuple(&reader)))
        case UInt8(ascii: "U"):
            let relationID = try reader.uint32()
            var oldTuple: OldTuple?
            switch try reader.byte() {
            case UInt8(ascii: "K"):
                oldTuple = .key(try tuple(&reader))
                try expect(UInt8(ascii: "N"), from: &reader)
            case UInt8(ascii: "O"):
                oldTuple = .full(try tuple(&reader))
                try expect(UInt8(ascii: "N"), from: &reader)
            case UInt8(ascii: "N"):
                break
            default:
                throw ReplicationDecodingError("an UPDATE has no 'K', 'O' or 'N' tuple")
            }
            message = .update(Update(relationID: relationID, oldTuple: oldTuple, newTuple: try tuple(&reader)))
        case UInt8(ascii: "D"):
            let relationID = try reader.uint32()
            let oldTuple: OldTuple
            switch try reader.byte() {
            case UInt8(ascii: "K"): oldTuple = .key(try tuple(&reader))
            case UInt8(ascii: "O"): oldTuple = .full(try tuple(&reader))
            default: throw ReplicationDecodingError("a DELETE has no 'K' or 'O' tuple")
            }
            message = .delete(Delete(relationID: relationID, oldTuple: oldTuple))
        case UInt8(ascii: "T"):
            let count = try reader.int32()
            let options = try reader.byte()
            guard count >= 0 else { throw ReplicationDecodingError("a TRUNCATE has a negative relation count") }
            var relationIDs: [UInt32] = []
            for _ in 0..<count { relationIDs.append(try reader.uint32()) }
            message = .truncate(Truncate(options: options, relationIDs: relationIDs))
        default:  // "M"
            let isTransactional = try reader.byte() & 1 == 1
            let lsn = try reader.lsn()
            let prefix = try reader.cString()
            let length = try reader.int32()
            message = .message(LogicalMessage(isTransactional: isTransactional, lsn: lsn, prefix: prefix, content: Array(try reader.bytes(Int(length)))))
        }
        return message
    }

    private static func relation(_ reader: inout ByteReader) throws(ReplicationDecodingError) -> Relation {
        let id = try reader.uint32()
        let namespace = namespace(try reader.cString())
        let name = try reader.cString()
        let identityByte = try reader.byte()
        guard let identity = ReplicaIdentity(rawValue: identityByte) else {
            throw ReplicationDecodingError("unknown replica identity '\(String(decoding: [identityByte], as: UTF8.self))'")
        }
        let count = try reader.int16()
        var columns: [Relation.Column] = []
        for _ in 0..<max(count, 0) {
            columns.append(
                Relation.Column(
                    isKey: try reader.byte() & 1 == 1,
                    name: try reader.cString(),
                    typeOID: try reader.uint32(),
                    typeModifier: try reader.int32()
                )
            )
        }
        return Relation(id: id, namespace: namespace, name: name, replicaIdentity: identity, columns: columns)
    }

    private static func tuple(_ reader: inout ByteReader) throws(ReplicationDecodingError) -> [TupleValue] {
        let count = try reader.int16()
        var values: [TupleValue] = []
        values.reserveCapacity(Int(max(count, 0)))
        for _ in 0..<max(count, 0) {
            switch try reader.byte() {
            case UInt8(ascii: "n"): values.append(.null)
            case UInt8(ascii: "u"): values.append(.unchangedToast)
            case UInt8(ascii: "t"):
                let length = try reader.int32()
                values.append(.text(String(decoding: try reader.bytes(Int(length)), as: UTF8.self)))
            case UInt8(ascii: "b"):
                throw ReplicationDecodingError("binary tuple values were not requested")
            case let kind:
                throw ReplicationDecodingError("unknown tuple value kind '\(String(decoding: [kind], as: UTF8.self))'")
            }
        }
        return values
    }

    private static func expect(_ tag: UInt8, from reader: inout ByteReader) throws(ReplicationDecodingError) {
        let byte = try reader.byte()
        guard byte == tag else {
            throw ReplicationDecodingError("expected '\(String(decoding: [tag], as: UTF8.self))', found '\(String(decoding: [byte], as: UTF8.self))'")
        }
    }

    private static func namespace(_ name: String) -> String {
        name.isEmpty ? "pg_catalog" : name
    }
}
