import Testing

@testable import HeraldCore

/// Binding conditions to a table: the checks upstream's `subscription_check_filters` trigger makes, with
/// PostgreSQL's messages.
@Suite struct FilterBindingTests {
    static let columns = [
        Column(name: "id", type: "int4"), Column(name: "details", type: "text"), Column(name: "flag", type: "bool"),
        Column(name: "room_id", type: "uuid"), Column(name: "tags", type: "_int4"), Column(name: "doc", type: "json"),
        Column(name: "meta", type: "jsonb"), Column(name: "mood", type: "mood"), Column(name: "title", type: "varchar"),
        Column(name: "code", type: "bpchar"), Column(name: "nick", type: "citext"), Column(name: "label", type: "name"),
        Column(name: "docs", type: "_json"), Column(name: "at", type: "timestamptz"),
    ]

    func bind(_ filter: String) throws -> BoundFilter {
        try BoundFilter(FilterParser.parse(filter), columns: Self.columns)
    }

    func failure(_ filter: String) -> FilterBindingError? {
        do {
            _ = try bind(filter)
            return nil
        } catch let error as FilterBindingError {
            return error
        } catch {
            Issue.record("unexpected \(error)")
            return nil
        }
    }

    @Test func unknownColumn() {
        let error = failure("notacolumn=eq.123")
        #expect(error == .raise("invalid column for filter notacolumn"))
        #expect(error?.exceptionText == "ERROR P0001 (raise_exception) invalid column for filter notacolumn")
        #expect(failure("ID=eq.1")?.message == "invalid column for filter ID")
        #expect(failure("id =eq.1")?.message == "invalid column for filter id ")
    }

    @Test func valuesMustReadAsTheColumnType() {
        let error = failure("room_id=eq.abc")
        #expect(error?.message == #"invalid input syntax for type uuid: "abc""#)
        #expect(error?.exceptionText == #"ERROR 22P02 (invalid_text_representation) invalid input syntax for type uuid: "abc""#)
        #expect(failure("id=eq.hey")?.message == #"invalid input syntax for type integer: "hey""#)
        #expect(failure("id=not.gt.1.5")?.message == #"invalid input syntax for type integer: "1.5""#)
        #expect(failure("flag=isdistinct.maybe")?.message == #"invalid input syntax for type boolean: "maybe""#)
        #expect(failure("at=lt.tomorrow")?.sqlState == "22007")
        // Commas outside quotes split conditions, so array values are quoted.
        #expect(failure(#"tags=eq."{1,x}""#)?.message == #"invalid input syntax for type integer: "x""#)
        #expect(failure("meta=eq.{")?.message == "invalid input syntax for type json")
    }

    @Test func inLists() throws {
        let hundred = (1...100).map(String.init).joined(separator: ",")
        #expect(try bind("id=in.(\(hundred))").conditions.count == 1)
        #expect(failure("id=in.(\(hundred),101)") == .raise("too many values for `in` filter. Maximum 100"))
        #expect(failure("id=in.(1,x)")?.message == #"invalid input syntax for type integer: "x""#)
        let malformed = failure(#"details=in.(a,"b)"#)
        #expect(malformed?.message == #"malformed array literal: "{a,"b}""#)
        #expect(malformed?.detail == "Unexpected end of input.")
        #expect(failure("tags=in.(1,2)") == .undefinedOperator("operator does not exist: integer[] = integer"))
        #expect(failure("doc=in.(1)")?.message == "operator does not exist: json = json")
        #expect(try bind("mood=in.(sad,happy)").conditions.count == 1)
    }

    @Test func isValues() throws {
        #expect(failure("id=is.maybe") == .raise("invalid value for is filter: must be null, true, false, or unknown"))
        #expect(failure("flag=is.TRUE") == .raise("invalid value for is filter: must be null, true, false, or unknown"))
        #expect(failure("id=is.true") == .raise("is true filter requires a boolean column, got integer"))
        #expect(failure("at=not.is.unknown") == .raise("is unknown filter requires a boolean column, got timestamp with time zone"))
        #expect(failure("tags=is.false") == .raise("is false filter requires a boolean column, got integer[]"))
        for filter in ["id=is.null", "doc=is.null", #"id=is."null""#, "flag=is.true", "flag=not.is.false", "flag=is.unknown"] {
            #expect(try bind(filter).conditions.count == 1, "\(filter)")
        }
    }

    @Test func patternsNeedTextColumns() throws {
        #expect(failure("id=like.1%") == .raise("operator like requires a text-compatible column type, got integer"))
        #expect(failure("room_id=ilike.a%") == .raise("operator ilike requires a text-compatible column type, got uuid"))
        #expect(failure("id=match.1") == .raise("operator match requires a text-compatible column type, got integer"))
        #expect(failure("meta=imatch.a") == .raise("operator imatch requires a text-compatible column type, got jsonb"))
        #expect(failure("mood=like.s%") == .raise("operator like requires a text-compatible column type, got mood"))
        for column in ["details", "title", "code", "nick", "label"] {
            #expect(try bind("\(column)=like.a%,\(column)=imatch.^a").conditions.count == 2, "\(column)")
        }
        let escape = failure(#"details=like.abc\"#)
        #expect(escape?.message == "LIKE pattern must not end with escape character")
        #expect(escape?.sqlState == "22025")
        let regex = failure("details=match.(ab")
        #expect(regex?.sqlState == "P0001")
        #expect(regex?.message.hasPrefix("invalid regular expression for match filter: invalid regular expression: ") == true)
        #expect(failure(#"details=imatch."a{2,1}""#)?.message.hasPrefix("invalid regular expression for imatch filter: ") == true)
    }

    @Test func operatorsTheTypeLacks() throws {
        #expect(failure("doc=eq.{}") == .undefinedOperator("operator does not exist: json = json"))
        #expect(failure("doc=neq.{}")?.message == "operator does not exist: json <> json")
        #expect(failure("doc=isdistinct.{}")?.message == "operator does not exist: json = json")
        #expect(failure("docs=eq.{}")?.message == "operator does not exist: json[] = json[]")
        #expect(failure("doc=eq.x")?.message == "invalid input syntax for type json")
        #expect(failure("meta=lt.{}") == .notSupported("filter operator lt is not supported for columns of type jsonb"))
        #expect(failure("mood=gte.happy")?.message == "filter operator gte is not supported for columns of type mood")
        for filter in ["meta=eq.{}", "meta=not.isdistinct.[1]", "mood=neq.sad", #"tags=lt."{1,2}""#, "doc=not.is.null"] {
            #expect(try bind(filter).conditions.count == 1, "\(filter)")
        }
    }

    @Test func firstFailingConditionWins() {
        #expect(failure("id=eq.1,nope=eq.1,id=eq.x")?.message == "invalid column for filter nope")
        #expect(failure("id=eq.x,nope=eq.1")?.message == #"invalid input syntax for type integer: "x""#)
    }

    @Test func boundFilterKeepsItsConditions() throws {
        let conditions = try FilterParser.parse("id=gt.0,details=not.like.x%")
        #expect(try BoundFilter(conditions, columns: Self.columns).conditions == conditions)
        #expect(BoundFilter.matchAll.isEmpty)
        #expect(try BoundFilter([], columns: []).isEmpty)
    }

    @Test func equalityKeyIsTheFirstPlainEq() throws {
        #expect(try bind("id=gt.1").equalityKey == nil)
        #expect(try bind("id=not.eq.1").equalityKey == nil)
        let key = try bind("id=gt.1,room_id=eq.6F9619FF-8B86-D011-B42D-00CF4FC964FF,id=eq.3").equalityKey
        #expect(key?.column == ColumnKey(name: "room_id", type: .scalar(.uuid)))
        #expect(key?.value == .uuid(0x6F96_19FF_8B86_D011, 0xB42D_00CF_4FC9_64FF))
    }
}
