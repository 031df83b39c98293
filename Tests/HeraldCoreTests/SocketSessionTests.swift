import HeraldCore
import Testing

@Suite struct SocketSessionTests {
    let claims = TokenClaims(role: "authenticated", expiresAt: 2_000_000_000, claims: ["role": "authenticated"])

    func message(_ event: String, topic: String = "realtime:room1", payload: JSONValue = [:], ref: String? = "1", joinRef: String? = "1") -> InboundMessage {
        InboundMessage(joinRef: joinRef, ref: ref, topic: topic, event: event, payload: payload)
    }

    func sent(_ actions: [SessionAction]) -> [OutboundMessage] {
        actions.compactMap {
            switch $0 {
            case .send(let m), .join(_, let m): m
            default: nil
            }
        }
    }

    @Test func heartbeatIsAnsweredOnPhoenix() {
        var session = SocketSession(version: .v2)
        let actions = session.handle(message("heartbeat", topic: "phoenix", ref: "9", joinRef: nil), token: nil, newSubscriber: SubscriberID(1))
        #expect(actions == [.send(.reply(to: "9", joinRef: nil, topic: "phoenix", status: "ok", response: [:]))])
    }

    @Test func joinRepliesWithEchoedBindingsThenRegisters() throws {
        var session = SocketSession(version: .v1)
        let payload = try JSONValue.parse(#"{"config":{"postgres_changes":[{"event":"INSERT","schema":"public","table":"messages"}]}}"#)
        let actions = session.handle(message("phx_join", payload: payload), token: .valid(claims), newSubscriber: SubscriberID(5))
        #expect(actions.count == 1)
        guard case .join(let join, let reply) = actions[0] else {
            Issue.record("unexpected actions \(actions)")
            return
        }
        let echoed = reply.payload["response"]?["postgres_changes"]?.arrayValue
        #expect(reply.payload["status"] == "ok")
        #expect(echoed?.first?.objectValue?.keys == ["event", "schema", "table", "id"])
        #expect(join.subscriber == SubscriberID(5) && join.subTopic == "room1" && join.bindings.count == 1)
        #expect(session.channels["realtime:room1"] != nil)
    }

    @Test func joinReplyAlwaysCarriesPostgresChanges() {
        var session = SocketSession(version: .v1)
        let actions = session.handle(message("phx_join", payload: [:]), token: .valid(claims), newSubscriber: SubscriberID(1))
        #expect(sent(actions).first?.payload["response"]?["postgres_changes"] == .array([]))
    }

    @Test func joinErrors() {
        var session = SocketSession(version: .v1)
        func reason(_ actions: [SessionAction]) -> String? { sent(actions).first?.payload["response"]?["reason"]?.stringValue }
        #expect(reason(session.handle(message("phx_join", topic: "room1"), token: .valid(claims), newSubscriber: SubscriberID(1))) == "unmatched topic")
        #expect(
            reason(session.handle(message("phx_join", topic: "realtime:"), token: .valid(claims), newSubscriber: SubscriberID(1)))
                == "TopicNameRequired: You must provide a topic name"
        )
        #expect(
            reason(session.handle(message("phx_join"), token: .expired(secondsAgo: 12), newSubscriber: SubscriberID(1)))
                == "InvalidJWTToken: Token has expired 12 seconds ago"
        )
        #expect(
            reason(session.handle(message("phx_join", payload: ["config": ["private": true]]), token: .valid(claims), newSubscriber: SubscriberID(1)))
                == "Unauthorized: You do not have permissions to read from this Channel topic: room1"
        )
        #expect(session.channels.isEmpty)
    }

    @Test func duplicateJoinClosesTheOldChannelFirst() {
        var session = SocketSession(version: .v2)
        _ = session.handle(message("phx_join", joinRef: "1"), token: .valid(claims), newSubscriber: SubscriberID(1))
        let actions = session.handle(message("phx_join", ref: "3", joinRef: "3"), token: .valid(claims), newSubscriber: SubscriberID(2))
        #expect(actions.first == .leave(SubscriberID(1)))
        let close = sent(actions).first
        #expect(close?.event == "phx_close" && close?.ref == "1" && close?.joinRef == "1")
        #expect(sent(actions).last?.event == "phx_reply")
        #expect(session.channels["realtime:room1"]?.subscriber == SubscriberID(2))
    }

    @Test func leaveRepliesThenCloses() {
        var session = SocketSession(version: .v2)
        _ = session.handle(message("phx_join", joinRef: "1"), token: .valid(claims), newSubscriber: SubscriberID(1))
        let actions = session.handle(message("phx_leave", ref: "2", joinRef: "1"), token: nil, newSubscriber: SubscriberID(9))
        #expect(actions.first == .leave(SubscriberID(1)))
        let messages = sent(actions)
        #expect(messages.map(\.event) == ["phx_reply", "phx_close"])
        #expect(messages[1].ref == "1")
        // Leaving a topic that is not joined is still ok.
        #expect(sent(session.handle(message("phx_leave", ref: "4"), token: nil, newSubscriber: SubscriberID(9))).first?.payload["status"] == "ok")
    }

    @Test func unjoinedTopicsGetUnmatchedTopic() {
        var session = SocketSession(version: .v1)
        let reply = sent(session.handle(message("broadcast", topic: "realtime:x"), token: nil, newSubscriber: SubscriberID(1))).first
        #expect(reply?.payload["response"]?["reason"] == "unmatched topic")
        #expect(reply?.joinRef == nil)
    }

    @Test func tokenRefresh() {
        var session = SocketSession(version: .v1)
        _ = session.handle(message("phx_join"), token: .valid(claims), newSubscriber: SubscriberID(1))
        let refresh = message("access_token", payload: ["access_token": "new"])
        #expect(session.tokenToVerify(for: refresh, connectionToken: "c") == "new")
        var newer = claims
        newer.expiresAt += 10
        #expect(session.handle(refresh, token: .valid(newer), newSubscriber: SubscriberID(2)) == [.refreshClaims(SubscriberID(1), newer)])
        #expect(session.handle(refresh, token: .valid(newer), newSubscriber: SubscriberID(2)).isEmpty)
        let failed = session.handle(refresh, token: .expired(secondsAgo: 3), newSubscriber: SubscriberID(2))
        #expect(sent(failed).map(\.event) == ["system", "phx_close"])
        #expect(sent(failed).first?.payload["message"] == "Token has expired 3 seconds ago")
        #expect(session.channels.isEmpty)
    }

    @Test func closeLeavesEveryChannel() {
        var session = SocketSession(version: .v1)
        _ = session.handle(message("phx_join", topic: "realtime:a"), token: .valid(claims), newSubscriber: SubscriberID(1))
        _ = session.handle(message("phx_join", topic: "realtime:b"), token: .valid(claims), newSubscriber: SubscriberID(2))
        #expect(Set(session.close().compactMap { if case .leave(let id) = $0 { id } else { nil } }) == [SubscriberID(1), SubscriberID(2)])
    }
}
