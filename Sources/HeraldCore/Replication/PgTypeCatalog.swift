/// The `pg_type` facts Herald needs about the columns it streams: the name events show, and how a value's
/// text becomes the JSON `row_to_json` would write.
public struct PgTypeCatalog: Sendable {
    /// One `pg_type` row.
    public struct Entry: Sendable, Equatable {
        public var oid: UInt32
        /// `typname`, the name events show in `columns`.
        public var name: String
        /// `typbasetype`: the type a domain is over; 0 for other types.
        public var baseType: UInt32
        /// `typelem` of a true array type (`typsubscript = array_subscript_handler`); 0 otherwise.
        public var elementType: UInt32
        /// `typdelim`: what separates elements in the text of arrays of this type.
        public var delimiter: UInt8

        public init(oid: UInt32, name: String, baseType: UInt32 = 0, elementType: UInt32 = 0, delimiter: UInt8 = UInt8(ascii: ",")) {
            self.oid = oid
            self.name = name
            self.baseType = baseType
            self.elementType = elementType
            self.delimiter = delimiter
        }
    }

    /// Query that returns ``Entry`` columns in order for the OIDs in `$1` (an `oid[]` literal).
    public static let entriesQuery = """
        SELECT oid::text, typname::text, typbasetype::text,
               CASE WHEN typsubscript = 'array_subscript_handler'::regproc THEN typelem ELSE 0 END::text,
               typdelim::text
          FROM pg_catalog.pg_type WHERE oid = ANY ($1::oid[])
        """

    private var entries: [UInt32: Entry] = [:]

    public init(_ entries: [Entry] = []) {
        add(entries)
    }

    public mutating func add(_ entries: [Entry]) {
        for entry in entries { self.entries[entry.oid] = entry }
    }

    /// An entry from one row of ``entriesQuery``; `nil` when the row is malformed.
    public static func entry(row: [String?]) -> Entry? {
        guard row.count == 5, let oid = row[0].flatMap({ UInt32($0) }), let name = row[1],
            let baseType = row[2].flatMap({ UInt32($0) }), let elementType = row[3].flatMap({ UInt32($0) }),
            let delimiter = row[4]?.utf8.first
        else { return nil }
        return Entry(oid: oid, name: name, baseType: baseType, elementType: elementType, delimiter: delimiter)
    }

    /// The OIDs to look up (with ``entriesQuery``) before values of `oids` can be converted: those not known
    /// yet, and the unknown base and element types of known ones. Repeat until it is empty.
    public func missing(_ oids: [UInt32]) -> [UInt32] {
        var missing: [UInt32] = []
        var pending = oids
        var seen = Set<UInt32>()
        while let oid = pending.popLast() {
            guard oid != 0, seen.insert(oid).inserted else { continue }
            guard let entry = entries[oid] else {
                missing.append(oid)
                continue
            }
            pending += [entry.baseType, entry.elementType]
        }
        return missing.sorted()
    }

    /// `typname`, or `unknown` for a type that could not be looked up (dropped since the change was written).
    public func name(of oid: UInt32) -> String {
        entries[oid]?.name ?? "unknown"
    }

    /// How `row_to_json` encodes values of this type (it looks through domains to their base type).
    func conversion(of oid: UInt32) -> ValueConversion {
        conversion(of: oid, depth: 0)
    }

    private func conversion(of oid: UInt32, depth: Int) -> ValueConversion {
        // Domains and arrays nest only a few levels; the bound guards against a catalog cycle.
        guard depth < 16, let entry = entries[oid] else { return .string }
        if entry.baseType != 0 { return conversion(of: entry.baseType, depth: depth + 1) }
        if entry.elementType != 0 {
            let element = entries[entry.elementType]
            return .array(conversion(of: entry.elementType, depth: depth + 1), delimiter: element?.delimiter ?? UInt8(ascii: ","))
        }
        switch oid {
        case 16: return .bool
        case 20, 21, 23, 700, 701, 1700: return .number  // int8, int2, int4, float4, float8, numeric
        case 1114: return .timestamp
        case 1184: return .timestamptz
        case 114, 3802: return .json  // json, jsonb
        default: return .string
        }
    }
}
