/// One notification on `herald_changes`: a captured row change (`realtime.capture_changes()`) or a broadcast
/// sent from the database (`realtime.capture_broadcast()`), told apart by the `broadcast` key.
public enum ChangeNotification: Sendable, Equatable {
    case change(TriggerPayload)
    case broadcast(DatabaseBroadcast)

    public init(json: some Collection<UInt8>) throws(FrameDecodingError) {
        let value: JSONValue
        do {
            value = try JSONValue.parse(json)
        } catch {
            throw FrameDecodingError("change notification is not JSON: \(error.reason)")
        }
        if let broadcast = value["broadcast"] {
            self = .broadcast(try DatabaseBroadcast(broadcast))
        } else {
            self = .change(try TriggerPayload(value: value))
        }
    }
}
