/// The `phx_join` payload as Herald understands it (reference section 2.1). Invalid fields fall back to their
/// defaults instead of failing the join, as upstream does.
public struct JoinConfig: Sendable, Equatable {
    public var broadcastSelf = false
    public var broadcastAck = false
    public var presenceEnabled = false
    /// `nil` when the client gave none (null, "" or absent): the server generates one.
    public var presenceKey: String?
    public var isPrivate = false
    /// The client's binding objects, raw (null entries removed), in request order.
    public var postgresChanges: [JSONObject] = []
    /// The channel token, when the client sent a usable one.
    public var accessToken: String?
    /// The position to resume postgres_changes after (a ``ChangePosition`` in text), from
    /// `config.postgres_changes_resume` or, where official clients can set it (`updateJoinPayload`), the payload's
    /// top-level `postgres_changes_resume`. `nil` when absent, null or empty.
    public var postgresChangesResume: String?

    public init() {}

    public init(payload: JSONValue) {
        let config = payload["config"]?.objectValue ?? JSONObject()
        let broadcast = config["broadcast"]?.objectValue ?? JSONObject()
        let presence = config["presence"]?.objectValue ?? JSONObject()
        broadcastSelf = Self.flexibleBool(broadcast["self"])
        broadcastAck = Self.flexibleBool(broadcast["ack"])
        presenceEnabled = Self.flexibleBool(presence["enabled"])
        isPrivate = Self.flexibleBool(config["private"])
        switch presence["key"] {
        case .string(let key) where !key.isEmpty: presenceKey = key
        case .number(let n): presenceKey = n
        case .bool(let b): presenceKey = b ? "true" : "false"
        case .array, .object: presenceKey = presence["key"]?.jsonString
        default: presenceKey = nil
        }
        if case .array(let entries) = config["postgres_changes"] {
            postgresChanges = entries.compactMap(\.objectValue)
        }
        accessToken = Self.channelToken(payload)
        if let resume = (config["postgres_changes_resume"] ?? payload["postgres_changes_resume"])?.stringValue, !resume.isEmpty {
            postgresChangesResume = resume
        }
    }

    /// `user_token` wins over `access_token` unless the latter is an `sb_` key; `sb_` keys and empty
    /// strings mean "use the connection's token".
    static func channelToken(_ payload: JSONValue) -> String? {
        let access = payload["access_token"]?.stringValue
        let user = payload["user_token"]?.stringValue
        let chosen: String?
        if let user, !(access?.hasPrefix("sb_") ?? false) { chosen = user } else { chosen = access }
        guard let token = chosen, !token.isEmpty, !token.hasPrefix("sb_") else { return nil }
        return token
    }

    /// JSON true/false or the strings "true"/"false" in any case; anything else is false.
    static func flexibleBool(_ value: JSONValue?) -> Bool {
        switch value {
        case .bool(let b)?: return b
        case .string(let s)?: return s.lowercased() == "true"
        default: return false
        }
    }
}

/// One postgres_changes binding as the client asked for it, with the id the join reply echoes.
public struct BindingRequest: Sendable, Equatable {
    public enum Shape: Sendable, Equatable {
        case valid(event: ChangeType?, schema: String, table: String, filter: String?)
        /// The reference's "No subscription params provided" case; the text is the system message.
        case invalid(message: String)
    }

    public var raw: JSONObject
    public var id: Int
    public var shape: Shape

    public init(raw: JSONObject) {
        self.raw = raw
        self.id = BindingRequest.stableID(raw)
        self.shape = BindingRequest.parseShape(raw)
    }

    /// The binding as echoed in the join reply: the raw object plus `"id"`.
    public var echo: JSONValue {
        var object = raw
        object["id"] = .int(id)
        return .object(object)
    }

    /// A non-negative integer below 2^27 (like Erlang's phash2 upstream), identical for identical bindings.
    static func stableID(_ raw: JSONObject) -> Int {
        var hash: UInt32 = 2_166_136_261
        for byte in JSONValue.object(raw).canonicalBytes {
            hash = (hash ^ UInt32(byte)) &* 16_777_619
        }
        return Int(hash & 0x07FF_FFFF)
    }

    /// Reference section 3.1: schema+table(+filter), schema alone (all tables), table alone (schema public);
    /// every present value must be a string.
    static func parseShape(_ raw: JSONObject) -> Shape {
        let event: ChangeType? =
            switch raw["event"]?.stringValue?.uppercased() {
            case "INSERT": .insert
            case "UPDATE": .update
            case "DELETE": .delete
            default: nil
            }
        let schema = raw["schema"]
        let table = raw["table"]
        let filter = raw["filter"]
        switch (schema, table, filter) {
        case (.string(let s)?, .string(let t)?, .string(let f)?):
            return .valid(event: event, schema: s, table: t, filter: f)
        case (.string(let s)?, .string(let t)?, nil):
            return .valid(event: event, schema: s, table: t, filter: nil)
        case (.string(let s)?, nil, nil):
            return .valid(event: event, schema: s, table: "*", filter: nil)
        case (nil, .string(let t)?, nil):
            return .valid(event: event, schema: "public", table: t, filter: nil)
        default:
            return .invalid(
                message: "No subscription params provided. Please provide at least a `schema` or `table` to subscribe to: "
                    + ElixirInspect.inspect(ElixirInspect.Term(.object(raw)))
            )
        }
    }
}

extension JSONValue {
    /// JSON text with object keys sorted, so equal values give equal bytes whatever their key order.
    var canonicalBytes: [UInt8] {
        switch self {
        case .object(let object):
            var out: [UInt8] = [UInt8(ascii: "{")]
            for (i, member) in object.members.sorted(by: { $0.key < $1.key }).enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeString(member.key, to: &out)
                out.append(UInt8(ascii: ":"))
                out.append(contentsOf: member.value.canonicalBytes)
            }
            out.append(UInt8(ascii: "}"))
            return out
        case .array(let elements):
            var out: [UInt8] = [UInt8(ascii: "[")]
            for (i, element) in elements.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: element.canonicalBytes)
            }
            out.append(UInt8(ascii: "]"))
            return out
        default:
            return jsonBytes
        }
    }
}
