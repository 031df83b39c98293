/// The `data` object of a postgres_changes event (reference section 3.3), encoded once per change and
/// shared by every recipient group.
public enum ChangeEvent {
    /// `{"schema","table","type","commit_timestamp","columns","record"?,"old_record"?,"errors":null,"position"?}`:
    /// INSERT has no `old_record`, DELETE no `record`. `position` (Herald's addition, see ``ChangePosition``) is
    /// what a client passes back to resume after this change; official clients ignore the key.
    public static func data(_ change: Change) -> JSONObject {
        var data = JSONObject()
        data.append("schema", .string(change.schema))
        data.append("table", .string(change.table))
        data.append("type", .string(change.type.rawValue))
        data.append("commit_timestamp", .string(Timestamp.iso8601Milliseconds(microseconds: change.commitTimestamp)))
        data.append("columns", .array(change.columns.map { ["name": .string($0.name), "type": .string($0.type)] }))
        if change.type != .delete {
            data.append("record", .object(change.record ?? JSONObject()))
        }
        if change.type != .insert {
            data.append("old_record", .object(change.oldRecord ?? JSONObject()))
        }
        data.append("errors", .null)
        if let position = change.position {
            data.append("position", .string(position.description))
        }
        return data
    }

    /// The error variant (reference section 3.3): no data beyond schema, table and type, and the error.
    public static func errorData(_ change: Change, error: String) -> JSONObject {
        var data = JSONObject()
        data.append("schema", .string(change.schema))
        data.append("table", .string(change.table))
        data.append("type", .string(change.type.rawValue))
        data.append("commit_timestamp", .null)
        data.append("columns", .array([]))
        if change.type != .delete { data.append("record", .object(JSONObject())) }
        if change.type != .insert { data.append("old_record", .object(JSONObject())) }
        data.append("errors", .array([.string(error)]))
        return data
    }

    /// The event payload `{"ids":[...],"data":...}` around already encoded `data` bytes.
    public static func payload(ids: [Int], data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 16 + ids.count * 10)
        out.append(contentsOf: #"{"ids":["#.utf8)
        for (i, id) in ids.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: String(id).utf8)
        }
        out.append(contentsOf: #"],"data":"#.utf8)
        out.append(contentsOf: data)
        out.append(UInt8(ascii: "}"))
        return out
    }
}

/// Time formatting without Foundation.
public enum Timestamp {
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC, as upstream's `commit_timestamp`.
    public static func iso8601Milliseconds(microseconds: Int64) -> String {
        let milliseconds = microseconds >= 0 ? microseconds / 1000 : (microseconds - 999) / 1000
        let seconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
        let millis = Int(milliseconds - seconds * 1000)
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = Int(seconds - days * 86_400)
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(millis, 3))Z"
    }

    /// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
    static func civilDate(daysSinceEpoch: Int64) -> (year: Int, month: Int, day: Int) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day))
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}
