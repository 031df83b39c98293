import HeraldCore
import Testing

@Suite struct RESTBroadcastTests {
    @Test func batchTurnsMessagesIntoJSONBroadcasts() throws {
        let body = #"{"messages":[{"topic":"room1","event":"cursor","payload":{"x":1},"id":"abc"},{"topic":"room1","event":"e","payload":{},"private":true}]}"#
        let messages = try RESTBroadcast.batch(Array(body.utf8), maxPayloadBytes: 100).get()
        #expect(messages[0].topic == TopicKey(subTopic: "room1", isPrivate: false))
        #expect(messages[0].content == .json(Array(#"{"event":"cursor","payload":{"x":1},"type":"broadcast","meta":{"id":"abc"}}"#.utf8)))
        #expect(messages.map(\.topic.isPrivate) == [false, true])
    }

    @Test func batchValidationNamesEachMessage() {
        let body = #"{"messages":[{"topic":"room1","payload":{}},{"topic":"t","event":"e","payload":{}},{"topic":"t","event":"e","payload":"x"}]}"#
        guard case .failure(let refusal) = RESTBroadcast.batch(Array(body.utf8), maxPayloadBytes: 100) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(refusal.status == 422)
        #expect(refusal.body.jsonString == #"{"errors":{"messages":[{"event":["can't be blank"]},{},{"payload":["can't be blank"]}]}}"#)
        guard case .failure(let tooBig) = RESTBroadcast.batch(Array(#"{"messages":[{"topic":"t","event":"e","payload":{"a":"0123456789"}}]}"#.utf8), maxPayloadBytes: 5) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(tooBig.body.jsonString == #"{"errors":{"messages":[{"payload":["Payload size exceeds tenant limit"]}]}}"#)
        guard case .failure(let garbage) = RESTBroadcast.batch(Array("nope".utf8), maxPayloadBytes: 5) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(garbage.status == 422)
    }

    @Test func singleAcceptsJSONAndBytesOnly() throws {
        let json = try RESTBroadcast.single(topic: "r", event: "e", contentType: "application/json; charset=utf-8", body: Array(#"{"a":1}"#.utf8), isPrivate: false, maxPayloadBytes: 100).get()
        #expect(json.content == .user(event: "e", encoding: .json, payload: Array(#"{"a":1}"#.utf8), metadata: nil))
        let bytes = try RESTBroadcast.single(topic: "r", event: "e", contentType: "application/octet-stream", body: [0, 1, 2], isPrivate: false, maxPayloadBytes: 100).get()
        #expect(bytes.content == .user(event: "e", encoding: .binary, payload: [0, 1, 2], metadata: nil))
        #expect(RESTBroadcast.single(topic: "r", event: "e", contentType: "text/plain", body: [], isPrivate: false, maxPayloadBytes: 100) == .failure(.unsupportedMediaType))
        #expect(RESTBroadcast.single(topic: "r", event: "e", contentType: nil, body: Array("[1,2,3]".utf8), isPrivate: false, maxPayloadBytes: 3) == .failure(.payloadTooLarge))
        #expect(try RESTBroadcast.single(topic: "r", event: "e", contentType: nil, body: Array("{}".utf8), isPrivate: true, maxPayloadBytes: 3).get().topic.isPrivate)
    }
}
