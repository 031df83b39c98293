/// A `postgres_changes` filter checked against its table's columns and ready to evaluate: every value is
/// parsed to its column's type and every pattern compiled once, here, not per change.
///
/// Evaluation follows upstream's `is_visible_through_filters` + `check_equality_op`: all conditions must be
/// true; SQL three-valued logic (a comparison with NULL is unknown, `not.` of unknown stays unknown, unknown
/// is not visible; `is` and `isdistinct` never yield unknown); a condition on a column missing from the row
/// image makes the row invisible.
public struct BoundFilter: Sendable {
    /// The conditions as parsed, in order (what upstream logs and echoes in its messages).
    public let conditions: [FilterCondition]
    let predicates: [ColumnPredicate]

    /// The filter without conditions: every row matches.
    public static let matchAll = BoundFilter(conditions: [], predicates: [])

    private init(conditions: [FilterCondition], predicates: [ColumnPredicate]) {
        self.conditions = conditions
        self.predicates = predicates
    }

    /// Checks each condition against `columns` (the table's columns the subscriber may read), in order, and
    /// throws the first failure as PostgreSQL reports it when upstream inserts the subscription.
    public init(_ conditions: [FilterCondition], columns: [Column]) throws(FilterBindingError) {
        var predicates: [ColumnPredicate] = []
        predicates.reserveCapacity(conditions.count)
        for condition in conditions {
            // Byte-wise, as PostgreSQL compares names (Swift's `==` would equate canonically equivalent ones).
            guard let column = columns.first(where: { $0.name.utf8.elementsEqual(condition.column.utf8) }) else {
                throw .raise("invalid column for filter \(condition.column)")
            }
            predicates.append(try ColumnPredicate(condition, type: ColumnType(typname: column.type)))
        }
        self.init(conditions: conditions, predicates: predicates)
    }

    public var isEmpty: Bool { predicates.isEmpty }

    /// Whether the row image (`to_jsonb(row)` shape) passes every condition.
    public func matches(_ row: JSONObject) -> Bool {
        for predicate in predicates where !predicate.holds(in: row) {
            return false
        }
        return true
    }

    /// The first plain `eq` condition: a row can only match if its value of `column` equals `value`, which
    /// lets the binding index look bindings up by value instead of evaluating them all.
    var equalityKey: (column: ColumnKey, value: FilterValue)? {
        for predicate in predicates where !predicate.negated {
            if case .compare(.equal, let value) = predicate.test {
                return (ColumnKey(name: predicate.column, type: predicate.type), value)
            }
        }
        return nil
    }
}

/// A column as the index keys it: the same name read as the same type.
struct ColumnKey: Hashable, Sendable {
    var name: String
    var type: ColumnType
}

/// One bound condition.
struct ColumnPredicate: Sendable {
    enum Comparison: Sendable {
        case equal, notEqual, less, lessOrEqual, greater, greaterOrEqual

        func holds(_ order: Int) -> Bool {
            switch self {
            case .equal: order == 0
            case .notEqual: order != 0
            case .less: order < 0
            case .lessOrEqual: order <= 0
            case .greater: order > 0
            case .greaterOrEqual: order >= 0
            }
        }
    }

    enum Test: Sendable {
        case compare(Comparison, FilterValue)
        /// `= any(array)`: the non-NULL elements, whether a NULL element was listed, whether the list is empty.
        case anyOf(Set<FilterValue>, containsNull: Bool, isEmpty: Bool)
        case distinctFrom(FilterValue)
        /// `IS NULL` (also `IS UNKNOWN`).
        case isNull
        /// `IS TRUE` / `IS FALSE`.
        case isBool(Bool)
        case like(LikePattern)
        case regex(RegexPattern)
    }

    let column: String
    let type: ColumnType
    let test: Test
    let negated: Bool

    init(_ condition: FilterCondition, type: ColumnType) throws(FilterBindingError) {
        column = condition.column
        self.type = type
        negated = condition.negated
        test = try ColumnPredicate.bind(condition, type: type)
    }

    /// True only when the condition is true: false and unknown are both "not visible".
    func holds(in row: JSONObject) -> Bool {
        guard let json = row[column] else { return false }
        let result: Bool?
        switch test {
        case .isNull:
            result = json.isNull
        case .isBool(let expected):
            switch RowValue.decode(json, as: type) {
            case .null: result = false
            case .value(let value): result = value == .bool(expected)
            case .invalid: return false
            }
        case .like(let pattern):
            guard case .string(let text) = json else { return false }
            result = pattern.matches(text)
        case .regex(let pattern):
            guard case .string(let text) = json else { return false }
            result = pattern.matches(text)
        case .compare(let comparison, let operand):
            switch RowValue.decode(json, as: type) {
            case .null: result = nil
            case .value(let value): result = comparison.holds(value.compare(operand))
            case .invalid: return false
            }
        case .distinctFrom(let operand):
            switch RowValue.decode(json, as: type) {
            case .null: result = true
            case .value(let value): result = value != operand
            case .invalid: return false
            }
        case .anyOf(let values, let containsNull, let isEmpty):
            // `x = any('{}')` is false even for a NULL x.
            if isEmpty {
                result = false
                break
            }
            switch RowValue.decode(json, as: type) {
            case .null: result = nil
            case .value(let value): result = values.contains(value) ? true : (containsNull ? nil : false)
            case .invalid: return false
            }
        }
        guard let result else { return false }
        return result != negated
    }

    // MARK: - Binding

    private static func bind(_ condition: FilterCondition, type: ColumnType) throws(FilterBindingError) -> Test {
        let value = condition.value
        switch condition.op {
        case .is:
            guard ["null", "true", "false", "unknown"].contains(value) else {
                throw .raise("invalid value for is filter: must be null, true, false, or unknown")
            }
            if value != "null", type != .scalar(.bool) {
                throw .raise("is \(value) filter requires a boolean column, got \(type.displayName)")
            }
            switch value {
            case "true": return .isBool(true)
            case "false": return .isBool(false)
            default: return .isNull
            }
        case .like, .ilike:
            let scalar = try textual(type, condition.op)
            return .like(try LikePattern(patternText(value, for: scalar), caseInsensitive: condition.op == .ilike || scalar == .citext))
        case .match, .imatch:
            let scalar = try textual(type, condition.op)
            return .regex(
                try RegexPattern(
                    patternText(value, for: scalar), caseInsensitive: condition.op == .imatch || scalar == .citext,
                    operatorName: condition.op.rawValue))
        case .in:
            let scalar: ScalarType
            switch type {
            case .scalar(let value): scalar = value
            case .array(let element):
                throw .undefinedOperator("operator does not exist: \(type.displayName) = \(element.displayName)")
            }
            let (elements, dimensions) = try ValueInput.readArrayElements(value, of: scalar)
            if (dimensions.first ?? 0) > FilterParser.maximumInValues {
                throw .raise("too many values for `in` filter. Maximum \(FilterParser.maximumInValues)")
            }
            try requireOperator(.eq, on: type)
            return .anyOf(Set(elements.compactMap { $0 }), containsNull: elements.contains { $0 == nil }, isEmpty: elements.isEmpty)
        case .eq, .neq, .lt, .lte, .gt, .gte, .isdistinct:
            let operand: FilterValue
            switch type {
            case .scalar(let scalar): operand = try ValueInput.read(value, as: scalar)
            case .array(let element): operand = try ValueInput.readArray(value, of: element)
            }
            try requireOperator(condition.op, on: type)
            switch condition.op {
            case .eq: return .compare(.equal, operand)
            case .neq: return .compare(.notEqual, operand)
            case .lt: return .compare(.less, operand)
            case .lte: return .compare(.lessOrEqual, operand)
            case .gt: return .compare(.greater, operand)
            case .gte: return .compare(.greaterOrEqual, operand)
            default: return .distinctFrom(operand)
            }
        }
    }

    /// LIKE and regular expressions need a text column.
    private static func textual(_ type: ColumnType, _ op: FilterOperator) throws(FilterBindingError) -> ScalarType {
        guard case .scalar(let scalar) = type, scalar.isTextual else {
            throw .raise("operator \(op.rawValue) requires a text-compatible column type, got \(type.displayName)")
        }
        return scalar
    }

    /// The pattern as PostgreSQL sees it once cast to the column type and back to text.
    private static func patternText(_ value: String, for scalar: ScalarType) -> String {
        switch scalar {
        case .bpchar: ValueInput.withoutTrailingSpaces(value)
        case .name: ValueInput.truncatedName(value)
        default: value
        }
    }

    /// Rejects operators the column type lacks in PostgreSQL (`json` has no `=`), and orderings this
    /// implementation does not reproduce (jsonb, unknown types).
    private static func requireOperator(_ op: FilterOperator, on type: ColumnType) throws(FilterBindingError) {
        let scalar: ScalarType
        switch type {
        case .scalar(let value): scalar = value
        case .array(let element): scalar = element
        }
        let symbol: String
        switch op {
        case .neq: symbol = "<>"
        case .lt: symbol = "<"
        case .lte: symbol = "<="
        case .gt: symbol = ">"
        case .gte: symbol = ">="
        default: symbol = "="
        }
        if !scalar.hasEquality {
            throw .undefinedOperator("operator does not exist: \(type.displayName) \(symbol) \(type.displayName)")
        }
        if [.lt, .lte, .gt, .gte].contains(op), !scalar.isOrderable {
            throw .notSupported("filter operator \(op.rawValue) is not supported for columns of type \(type.displayName)")
        }
    }
}

/// A row image value read as its column's type, the way upstream casts `value #>> '{}'` to the type.
enum RowValue {
    enum Decoded {
        case null
        case value(FilterValue)
        /// Not a value of the column type (a malformed row image): the row is not visible.
        case invalid
    }

    static func decode(_ json: JSONValue, as type: ColumnType) -> Decoded {
        if json.isNull { return .null }
        switch type {
        case .scalar(let scalar): return scalarValue(json, scalar).map(Decoded.value) ?? .invalid
        case .array(let element):
            switch json {
            case .array:
                var elements: [FilterValue?] = []
                guard let dimensions = flatten(json, element, into: &elements) else { return .invalid }
                return .value(.array(elements, dimensions: elements.isEmpty ? [] : dimensions))
            case .string(let text):
                return (try? ValueInput.readArray(text, of: element)).map(Decoded.value) ?? .invalid
            default:
                return .invalid
            }
        }
    }

    private static func scalarValue(_ json: JSONValue, _ scalar: ScalarType) -> FilterValue? {
        if scalar == .json || scalar == .jsonb { return CanonicalJSON(json).map(FilterValue.json) }
        let text: String
        switch json {
        case .string(let string): text = string
        case .number(let literal): text = literal
        case .bool(let flag):
            if scalar == .bool { return .bool(flag) }
            text = flag ? "true" : "false"
        case .null, .array, .object: return nil
        }
        return try? ValueInput.read(text, as: scalar)
    }

    /// Nested JSON arrays as a PostgreSQL multi-dimensional array: row-major elements, dimensions; nil when
    /// the nesting is not rectangular or an element is not of the type.
    private static func flatten(_ json: JSONValue, _ element: ScalarType, into elements: inout [FilterValue?]) -> [Int]? {
        guard case .array(let items) = json else { return nil }
        var shape: [Int]?
        var sawElement = false
        for item in items {
            switch item {
            case .array:
                guard !sawElement, let childShape = flatten(item, element, into: &elements) else { return nil }
                if let shape, shape != childShape { return nil }
                shape = childShape
            case .null:
                guard shape == nil else { return nil }
                sawElement = true
                elements.append(nil)
            default:
                guard shape == nil, let value = scalarValue(item, element) else { return nil }
                sawElement = true
                elements.append(value)
            }
        }
        return [items.count] + (shape ?? [])
    }
}
