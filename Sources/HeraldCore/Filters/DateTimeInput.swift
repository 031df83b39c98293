/// PostgreSQL's date/time input for the forms filters and `to_jsonb` row images use: ISO 8601 dates
/// (`2026-01-01`, `20260101`, optional ` BC`/` AD`), times (`10:00`, `10:00:00.123456`, hour 24 only as
/// `24:00:00`), a `T` or spaces between, numeric zones (`Z`, `UTC`, `GMT`, `+05`, `+0530`, `-08:00`,
/// `+05:30:15`) and `infinity`/`-infinity`/`epoch`. Not supported (PostgreSQL accepts them): named zones
/// like `Europe/Paris` or `EST`, textual months, `now`/`today`; offset-less timestamptz/timetz input is read
/// as UTC (upstream uses the session time zone, UTC on Supabase). Fractions are rounded to microseconds,
/// half up.
enum DateTimeInput {
    static let microsecondsPerSecond: Int64 = 1_000_000
    static let microsecondsPerDay: Int64 = 86_400 * microsecondsPerSecond

    static func date(_ text: String) throws(FilterBindingError) -> FilterValue {
        let fields = try parse(text, type: "date", requireDate: true)
        switch fields.special {
        case .positiveInfinity: return .instant(.max)
        case .negativeInfinity: return .instant(.min)
        case .epoch: return .instant(0)
        case nil:
            let days = try fields.days(input: text)
            // PostgreSQL's date range: 4714-11-24 BC to 5874897-12-31.
            guard days >= minimumDays, days < daysFromCivil(year: 5_874_898, month: 1, day: 1) else {
                throw .datetimeOverflow("date out of range: \"\(text)\"")
            }
            return .instant(days)
        }
    }

    static func timestamp(_ text: String, withZone: Bool) throws(FilterBindingError) -> FilterValue {
        let type = withZone ? "timestamp with time zone" : "timestamp"
        let fields = try parse(text, type: type, requireDate: true)
        switch fields.special {
        case .positiveInfinity: return .instant(.max)
        case .negativeInfinity: return .instant(.min)
        case .epoch: return .instant(-postgresEpochDays * microsecondsPerDay)
        case nil:
            // Microseconds since 2000-01-01, as PostgreSQL counts them: its whole range fits in Int64 that way.
            let days = try fields.days(input: text) - postgresEpochDays
            let outOfRange = FilterBindingError.datetimeOverflow("timestamp out of range: \"\(text)\"")
            // Checked on days first (a day of margin for the zone) so the microseconds cannot overflow.
            guard days >= timestampStartDays - 1, days <= timestampEndDays else { throw outOfRange }
            var micros = days * microsecondsPerDay + (try fields.timeOfDay(input: text))
            if withZone { micros -= Int64(fields.zoneSecondsEast ?? 0) * microsecondsPerSecond }
            // PostgreSQL's timestamp range: 4714-11-24 00:00 BC up to (not including) 294277-01-01.
            guard micros >= timestampStartDays * microsecondsPerDay, micros < timestampEndDays * microsecondsPerDay else {
                throw outOfRange
            }
            return .instant(micros)
        }
    }

    static func time(_ text: String, withZone: Bool) throws(FilterBindingError) -> FilterValue {
        let type = withZone ? "time with time zone" : "time"
        let fields = try parse(text, type: type, requireDate: false)
        guard fields.special == nil, fields.hour != nil else { throw .invalidDatetime(type: type, input: text) }
        let micros = try fields.timeOfDay(input: text)
        guard withZone else { return .instant(micros) }
        let west = -(fields.zoneSecondsEast ?? 0)
        return .zonedTime(utcMicroseconds: micros + Int64(west) * microsecondsPerSecond, secondsWestOfUTC: Int32(west))
    }

    private static let minimumDays = daysFromCivil(year: -4713, month: 11, day: 24)
    private static let timestampStartDays = minimumDays - postgresEpochDays
    private static let postgresEpochDays = daysFromCivil(year: 2000, month: 1, day: 1)
    private static let timestampEndDays = daysFromCivil(year: 294_277, month: 1, day: 1) - postgresEpochDays
    /// Beyond any PostgreSQL date; keeps the day arithmetic far from overflow.
    private static let maximumYear = 6_000_000

    enum Special { case positiveInfinity, negativeInfinity, epoch }

    struct Fields {
        var special: Special?
        var year: Int?
        var month = 1
        var day = 1
        var isBC = false
        var hour: Int?
        var minute = 0
        var second = 0
        var microsecond: Int64 = 0
        var zoneSecondsEast: Int?

        func days(input: String) throws(FilterBindingError) -> Int64 {
            guard let year, year >= 1, year <= DateTimeInput.maximumYear else {
                throw .datetimeOverflow("date/time field value out of range: \"\(input)\"")
            }
            let astronomical = isBC ? 1 - year : year
            guard (1...12).contains(month), day >= 1, day <= DateTimeInput.daysInMonth(year: astronomical, month: month) else {
                throw .datetimeOverflow("date/time field value out of range: \"\(input)\"")
            }
            return DateTimeInput.daysFromCivil(year: astronomical, month: month, day: day)
        }

        func timeOfDay(input: String) throws(FilterBindingError) -> Int64 {
            guard let hour else { return 0 }
            let total =
                Int64(hour) * 3_600 * DateTimeInput.microsecondsPerSecond + Int64(minute) * 60 * DateTimeInput.microsecondsPerSecond
                + Int64(second) * DateTimeInput.microsecondsPerSecond + microsecond
            guard hour <= 24, minute <= 59, second <= 60, total <= DateTimeInput.microsecondsPerDay else {
                throw .datetimeOverflow("date/time field value out of range: \"\(input)\"")
            }
            return total
        }
    }

    /// Splits the text into fields; `requireDate` is false for time types, where a leading date is optional
    /// (and ignored, as PostgreSQL does).
    static func parse(_ text: String, type: String, requireDate: Bool) throws(FilterBindingError) -> Fields {
        var scanner = Scanner(Array(text.utf8))
        scanner.skipSpaces()
        var fields = Fields()
        if requireDate, let special = scanner.special() {
            scanner.skipSpaces()
            guard scanner.atEnd else { throw .invalidDatetime(type: type, input: text) }
            fields.special = special
            return fields
        }
        let hasDate = scanner.looksLikeDate()
        if hasDate {
            guard let (year, month, day) = scanner.date() else { throw .invalidDatetime(type: type, input: text) }
            (fields.year, fields.month, fields.day) = (year, month, day)
            if !scanner.timeSeparator() {
                scanner.skipSpaces()
            }
        } else if requireDate {
            throw .invalidDatetime(type: type, input: text)
        }
        if scanner.peekDigit() {
            guard let (hour, minute, second, micro) = scanner.time() else { throw .invalidDatetime(type: type, input: text) }
            (fields.hour, fields.minute, fields.second, fields.microsecond) = (hour, minute, second, micro)
            scanner.skipSpaces()
            if let zone = scanner.zone() {
                guard let zone else { throw .invalidDatetime(type: type, input: text) }
                guard abs(zone) <= 15 * 3_600 + 59 * 60 + 59 else {
                    throw FilterBindingError(
                        sqlState: "22009", conditionName: "invalid_time_zone_displacement_value",
                        message: "time zone displacement out of range: \"\(text)\"")
                }
                fields.zoneSecondsEast = zone
                scanner.skipSpaces()
            }
        } else if !hasDate {
            throw .invalidDatetime(type: type, input: text)
        }
        if let era = scanner.era() {
            guard hasDate else { throw .invalidDatetime(type: type, input: text) }
            fields.isBC = era
            scanner.skipSpaces()
        }
        guard scanner.atEnd else { throw .invalidDatetime(type: type, input: text) }
        return fields
    }

    /// Days since 1970-01-01 in the proleptic Gregorian calendar (astronomical years: 1 BC is year 0).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let shiftedMonth = Int64(month > 2 ? month - 3 : month + 9)
        let dayOfYear = (153 * shiftedMonth + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2:
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
            return leap ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { index == bytes.count }

        func peek(_ offset: Int = 0) -> UInt8? {
            index + offset < bytes.count ? bytes[index + offset] : nil
        }

        func peekDigit() -> Bool { peek().map(isDigit) ?? false }

        mutating func skipSpaces() {
            while let byte = peek(), isPostgresSpace(byte) { index += 1 }
        }

        mutating func digits(maximum: Int = .max) -> (value: Int, count: Int)? {
            var value = 0
            var count = 0
            while count < maximum, let byte = peek(), isDigit(byte) {
                guard value < Int.max / 100 else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                count += 1
                index += 1
            }
            return count == 0 ? nil : (value, count)
        }

        mutating func expect(_ byte: UInt8) -> Bool {
            guard peek() == byte else { return false }
            index += 1
            return true
        }

        /// A case-insensitive keyword that is not followed by a letter.
        mutating func keyword(_ word: String) -> Bool {
            let expected = Array(word.utf8)
            guard bytes.count - index >= expected.count else { return false }
            for (offset, letter) in expected.enumerated() where lowercased(bytes[index + offset]) != letter {
                return false
            }
            if let next = peek(expected.count), isLetter(next) { return false }
            index += expected.count
            return true
        }

        mutating func special() -> Special? {
            let start = index
            if keyword("infinity") || keyword("+infinity") { return .positiveInfinity }
            if keyword("-infinity") { return .negativeInfinity }
            if keyword("epoch") { return .epoch }
            index = start
            return nil
        }

        /// Digits followed by `-` or eight digits in a row: the text starts with a date.
        func looksLikeDate() -> Bool {
            var offset = 0
            while let byte = peek(offset), isDigit(byte) { offset += 1 }
            return offset > 0 && (peek(offset) == UInt8(ascii: "-") || (offset == 8 && peek(offset) != UInt8(ascii: ":")))
        }

        mutating func date() -> (Int, Int, Int)? {
            let start = index
            guard let (first, count) = digits() else { return nil }
            if count == 8, peek() != UInt8(ascii: "-") {
                return (first / 10_000, first / 100 % 100, first % 100)
            }
            guard expect(UInt8(ascii: "-")), let (month, _) = digits(maximum: 2), expect(UInt8(ascii: "-")),
                let (day, _) = digits(maximum: 2)
            else {
                index = start
                return nil
            }
            return (first, month, day)
        }

        /// `T` right before a digit, or spaces before a digit.
        mutating func timeSeparator() -> Bool {
            if let byte = peek(), byte == UInt8(ascii: "T") || byte == UInt8(ascii: "t"), peek(1).map(isDigit) ?? false {
                index += 1
                return true
            }
            return false
        }

        mutating func time() -> (Int, Int, Int, Int64)? {
            guard let (hour, _) = digits(maximum: 2), expect(UInt8(ascii: ":")), let (minute, _) = digits(maximum: 2) else {
                return nil
            }
            var second = 0
            var micro: Int64 = 0
            if expect(UInt8(ascii: ":")) {
                guard let (value, _) = digits(maximum: 2) else { return nil }
                second = value
                if expect(UInt8(ascii: ".")) {
                    micro = fraction()
                }
            }
            return (hour, minute, second, micro)
        }

        /// Fractional seconds rounded to microseconds, half up (a carry into the next second is kept in the
        /// returned microseconds, i.e. it may be 1_000_000).
        mutating func fraction() -> Int64 {
            var micro: Int64 = 0
            var count = 0
            var roundUp = false
            while let byte = peek(), isDigit(byte) {
                let digit = Int64(byte - UInt8(ascii: "0"))
                if count < 6 {
                    micro = micro * 10 + digit
                } else if count == 6 {
                    roundUp = digit >= 5
                }
                count += 1
                index += 1
            }
            while count < 6 {
                micro *= 10
                count += 1
            }
            return micro + (roundUp ? 1 : 0)
        }

        /// Nil when there is no zone here; `.some(nil)` for a malformed one; seconds east of UTC otherwise.
        mutating func zone() -> Int?? {
            if keyword("utc") || keyword("gmt") || keyword("z") { return .some(0) }
            guard let sign = peek(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") else { return nil }
            index += 1
            let direction = sign == UInt8(ascii: "-") ? -1 : 1
            guard let (first, count) = digits(maximum: 6) else { return .some(nil) }
            var hours = first
            var minutes = 0
            var seconds = 0
            switch count {
            case 1, 2:
                if expect(UInt8(ascii: ":")) {
                    guard let (value, _) = digits(maximum: 2) else { return .some(nil) }
                    minutes = value
                    if expect(UInt8(ascii: ":")) {
                        guard let (value, _) = digits(maximum: 2) else { return .some(nil) }
                        seconds = value
                    }
                }
            case 4: (hours, minutes) = (first / 100, first % 100)
            case 6: (hours, minutes, seconds) = (first / 10_000, first / 100 % 100, first % 100)
            default: return .some(nil)
            }
            guard minutes <= 59, seconds <= 59 else { return .some(nil) }
            return .some(direction * (hours * 3_600 + minutes * 60 + seconds))
        }

        /// True for BC, false for AD, nil when neither is here.
        mutating func era() -> Bool? {
            if keyword("bc") { return true }
            if keyword("ad") { return false }
            return nil
        }

        private func lowercased(_ byte: UInt8) -> UInt8 {
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
        }

        private func isLetter(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(lowercased(byte))
        }
    }
}
