/// Decodes the JSON that `realtime.capture_changes()` sends through NOTIFY (sql/realtime/capture.sql):
/// `{"schema","table","type","xid","columns":[{"name","type"}],"record"?,"old_record"?}`.
public struct TriggerPayload: Sendable, Equatable {
    /// The writing transaction; rows of one transaction share one commit timestamp.
    public var transactionID: String
    public var schema: String
    public var table: String
    public var type: ChangeType
    public var columns: [Column]
    public var record: JSONObject?
    public var oldRecord: JSONObject?

    public init(json: some Collection<UInt8>) throws(FrameDecodingError) {
        let value: JSONValue
        do {
            value = try JSONValue.parse(json)
        } catch {
            throw FrameDecodingError("change payload is not JSON: \(error.reason)")
        }
        try self.init(value: value)
    }

    /// Decodes an already parsed notification (see ``ChangeNotification``).
    public init(value: JSONValue) throws(FrameDecodingError) {
        guard case .string(let schema)? = value["schema"], case .string(let table)? = value["table"],
            let type = value["type"]?.stringValue.flatMap(ChangeType.init(rawValue:)),
            case .array(let columnValues)? = value["columns"]
        else { throw FrameDecodingError("change payload lacks schema, table, type or columns") }
        var columns: [Column] = []
        columns.reserveCapacity(columnValues.count)
        for column in columnValues {
            guard case .string(let name)? = column["name"], case .string(let typeName)? = column["type"] else {
                throw FrameDecodingError("change payload has a malformed column")
            }
            columns.append(Column(name: name, type: typeName))
        }
        self.transactionID = value["xid"]?.stringValue ?? ""
        self.schema = schema
        self.table = table
        self.type = type
        self.columns = columns
        self.record = value["record"]?.objectValue.map { Self.normalize($0, columns: columns) }
        self.oldRecord = value["old_record"]?.objectValue.map { Self.normalize($0, columns: columns) }
    }

    public func change(commitTimestamp: Int64) -> Change {
        Change(
            schema: schema,
            table: table,
            type: type,
            commitTimestamp: commitTimestamp,
            columns: columns,
            record: record,
            oldRecord: oldRecord,
            // txid_current() counts epochs above 32 bits; the WAL and the checks use the 32-bit id.
            transactionID: UInt64(transactionID).map { UInt32(truncatingIfNeeded: $0) }
        )
    }

    /// `to_jsonb` writes bytea as `\x0102`; events carry the bare hex digits like upstream (`"0102"`).
    static func normalize(_ row: JSONObject, columns: [Column]) -> JSONObject {
        guard columns.contains(where: { $0.type == "bytea" }) else { return row }
        var row = row
        for column in columns where column.type == "bytea" {
            if case .string(let text)? = row[column.name], text.hasPrefix("\\x") {
                row[column.name] = .string(String(text.dropFirst(2)))
            }
        }
        return row
    }
}
