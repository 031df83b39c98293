/// The element types filters know how to read and compare, from `pg_type.typname`.
enum ScalarType: Hashable, Sendable {
    case int2, int4, int8, oid
    case float4, float8, numeric
    case bool
    case text, varchar, bpchar, name, citext
    case uuid
    case date, timestamp, timestamptz, time, timetz
    case bytea
    case json, jsonb
    /// Any other type (enums, domains, `inet`, `interval`…): compared by exact text, and only for equality,
    /// since its ordering and input rules are unknown here.
    case other(String)

    init(typname: String) {
        switch typname {
        case "int2": self = .int2
        case "int4": self = .int4
        case "int8": self = .int8
        case "oid": self = .oid
        case "float4": self = .float4
        case "float8": self = .float8
        case "numeric": self = .numeric
        case "bool": self = .bool
        case "text": self = .text
        case "varchar": self = .varchar
        case "bpchar": self = .bpchar
        case "name": self = .name
        case "citext": self = .citext
        case "uuid": self = .uuid
        case "date": self = .date
        case "timestamp": self = .timestamp
        case "timestamptz": self = .timestamptz
        case "time": self = .time
        case "timetz": self = .timetz
        case "bytea": self = .bytea
        case "json": self = .json
        case "jsonb": self = .jsonb
        default: self = .other(typname)
        }
    }

    /// The type as `regtype` prints it, which upstream's messages use.
    var displayName: String {
        switch self {
        case .int2: "smallint"
        case .int4: "integer"
        case .int8: "bigint"
        case .oid: "oid"
        case .float4: "real"
        case .float8: "double precision"
        case .numeric: "numeric"
        case .bool: "boolean"
        case .text: "text"
        case .varchar: "character varying"
        case .bpchar: "character"
        case .name: "name"
        case .citext: "citext"
        case .uuid: "uuid"
        case .date: "date"
        case .timestamp: "timestamp without time zone"
        case .timestamptz: "timestamp with time zone"
        case .time: "time without time zone"
        case .timetz: "time with time zone"
        case .bytea: "bytea"
        case .json: "json"
        case .jsonb: "jsonb"
        case .other(let typname): typname
        }
    }

    /// LIKE and regular expressions apply (upstream also rejects `varchar`, `bpchar` and `name` here
    /// because PostgreSQL reaches them through `text`; Herald accepts them, as SQL itself does).
    var isTextual: Bool {
        switch self {
        case .text, .varchar, .bpchar, .name, .citext: true
        default: false
        }
    }

    /// PostgreSQL has `=` for it (plain `json` has none).
    var hasEquality: Bool { self != .json }

    /// `<`, `>`… are supported here: jsonb's ordering and other types' are not reproduced.
    var isOrderable: Bool {
        switch self {
        case .json, .jsonb, .other: false
        default: true
        }
    }
}

/// A column's type as filters see it: a scalar or a (possibly multi-dimensional) array of one.
enum ColumnType: Hashable, Sendable {
    case scalar(ScalarType)
    case array(ScalarType)

    init(typname: String) {
        if typname.utf8.first == UInt8(ascii: "_"), typname.utf8.count > 1 {
            self = .array(ScalarType(typname: String(typname.dropFirst())))
        } else {
            self = .scalar(ScalarType(typname: typname))
        }
    }

    var displayName: String {
        switch self {
        case .scalar(let scalar): scalar.displayName
        case .array(let element): element.displayName + "[]"
        }
    }
}
