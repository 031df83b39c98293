import HeraldCore
import Testing

@Suite struct SocketSessionTests {
    let claims = TokenClaims(role: "authenticated", expiresAt: 2_000_000_000, claims: ["role": "authenticated"])

    func message(_ event: String, topic: String = "realtime:room1", payload: JSONValue = [:], ref: String? = "1", joinRef: String? = "1") -> PhoenixMessage {
        PhoenixMessage(joinRef: joinRef, ref: ref, topic: topic, event: event, payload: payload)
    }

    func fresh(_ id: UInt64) -> NewChannel { NewChannel(subscriber: SubscriberID(id), generatedPresenceKey: "generated-\(id)") }

    func sent(_ actions: [SessionAction]) -> [PhoenixMessage] {
        actions.compactMap {
            switch $0 {
            case .send(let m), .join(_, let m): m
            default: nil
            }
        }
    }

    @Test func heartbeatIsAnsweredOnPhoenix() {
        var session = SocketSession(version: .v2)
        let actions = session.handle(message("heartbeat", topic: "phoenix", ref: "9", joinRef: nil), token: nil, newChannel: fresh(1), now: .now)
        #expect(actions == [.send(.reply(to: "9", joinRef: nil, topic: "phoenix", status: "ok", response: [:]))])
    }

    @Test func joinRepliesWithEchoedBindingsThenRegisters() throws {
        var session = SocketSession(version: .v1)
        let payload = try JSONValue.parse(#"{"config":{"postgres_changes":[{"event":"INSERT","schema":"public","table":"messages"}]}}"#)
        let actions = session.handle(message("phx_join", payload: payload), token: .valid(claims), newChannel: fresh(5), now: .now)
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
        let actions = session.handle(message("phx_join", payload: [:]), token: .valid(claims), newChannel: fresh(1), now: .now)
        #expect(sent(actions).first?.payload["response"]?["postgres_changes"] == .array([]))
    }

    @Test func joinErrors() {
        var session = SocketSession(version: .v1)
        func reason(_ actions: [SessionAction]) -> String? { sent(actions).first?.payload["response"]?["reason"]?.stringValue }
        #expect(reason(session.handle(message("phx_join", topic: "room1"), token: .valid(claims), newChannel: fresh(1), now: .now)) == "unmatched topic")
        #expect(
            reason(session.handle(message("phx_join", topic: "realtime:"), token: .valid(claims), newChannel: fresh(1), now: .now))
                == "TopicNameRequired: You must provide a topic name"
        )
        #expect(
            reason(session.handle(message("phx_join"), token: .expired(secondsAgo: 12), newChannel: fresh(1), now: .now))
                == "InvalidJWTToken: Token has expired 12 seconds ago"
        )
        #expect(session.channels.isEmpty)
        // A private join goes to the hub, which asks the database's policies; a refusal forgets the channel.
        let privateJoin = session.handle(message("phx_join", payload: ["config": ["private": true]]), token: .valid(claims), newChannel: fresh(1), now: .now)
        guard case .join(let channel, let reply)? = privateJoin.first else {
            Issue.record("expected a join, got \(privateJoin)")
            return
        }
        #expect(channel.config.isPrivate && session.channels.count == 1)
        let refusal = session.refuse(channel, reply: reply, reason: SocketSession.unauthorizedRead(channel))
        #expect(reason(refusal) == "Unauthorized: You do not have permissions to read from this Channel topic: room1")
        #expect(session.channels.isEmpty)
    }

    @Test func duplicateJoinClosesTheOldChannelFirst() {
        var session = SocketSession(version: .v2)
        _ = session.handle(message("phx_join", joinRef: "1"), token: .valid(claims), newChannel: fresh(1), now: .now)
        let actions = session.handle(message("phx_join", ref: "3", joinRef: "3"), token: .valid(claims), newChannel: fresh(2), now: .now)
        #expect(actions.first == .leave(SubscriberID(1)))
        let close = sent(actions).first
        #expect(close?.event == "phx_close" && close?.ref == "1" && close?.joinRef == "1")
        #expect(sent(actions).last?.event == "phx_reply")
        #expect(session.channels["realtime:room1"]?.subscriber == SubscriberID(2))
    }

    @Test func leaveRepliesThenCloses() {
        var session = SocketSession(version: .v2)
        _ = session.handle(message("phx_join", joinRef: "1"), token: .valid(claims), newChannel: fresh(1), now: .now)
        let actions = session.handle(message("phx_leave", ref: "2", joinRef: "1"), token: nil, newChannel: fresh(9), now: .now)
        #expect(actions.first == .leave(SubscriberID(1)))
        let messages = sent(actions)
        #expect(messages.map(\.event) == ["phx_reply", "phx_close"])
        #expect(messages[1].ref == "1")
        // Leaving a topic that is not joined is still ok.
        #expect(sent(session.handle(message("phx_leave", ref: "4"), token: nil, newChannel: fresh(9), now: .now)).first?.payload["status"] == "ok")
    }

    @Test func unjoinedTopicsGetUnmatchedTopic() {
        var session = SocketSession(version: .v1)
        let reply = sent(session.handle(message("broadcast", topic: "realtime:x"), token: nil, newChannel: fresh(1), now: .now)).first
        #expect(reply?.payload["response"]?["reason"] == "unmatched topic")
        #expect(reply?.joinRef == nil)
    }

    @Test func tokenRefresh() {
        var session = SocketSession(version: .v1)
        _ = session.handle(message("phx_join"), token: .valid(claims), newChannel: fresh(1), now: .now)
        let refresh = message("access_token", payload: ["access_token": "new"])
        #expect(session.tokenToVerify(for: refresh, connectionToken: "c") == "new")
        var newer = claims
        newer.expiresAt += 10
        #expect(session.handle(refresh, token: .valid(newer), newChannel: fresh(2), now: .now) == [.refreshClaims(SubscriberID(1), newer)])
        #expect(session.handle(refresh, token: .valid(newer), newChannel: fresh(2), now: .now).isEmpty)
        let failed = session.handle(refresh, token: .expired(secondsAgo: 3), newChannel: fresh(2), now: .now)
        #expect(sent(failed).map(\.event) == ["system", "phx_close"])
        #expect(sent(failed).first?.payload["message"] == "Token has expired 3 seconds ago")
        #expect(session.channels.isEmpty)
    }

    @Test func closeLeavesEveryChannel() {
        var session = SocketSession(version: .v1)
        _ = session.handle(message("phx_join", topic: "realtime:a"), token: .valid(claims), newChannel: fresh(1), now: .now)
        _ = session.handle(message("phx_join", topic: "realtime:b"), token: .valid(claims), newChannel: fresh(2), now: .now)
        #expect(Set(session.close().compactMap { if case .leave(let id) = $0 { id } else { nil } }) == [SubscriberID(1), SubscriberID(2)])
    }

    @Test func broadcastRelaysWithSelfAndAck() throws {
        var session = SocketSession(version: .v2)
        let config = try JSONValue.parse(#"{"config":{"broadcast":{"self":true,"ack":true}}}"#)
        _ = session.handle(message("phx_join", payload: config, joinRef: "1"), token: .valid(claims), newChannel: fresh(1), now: .now)
        let push = message("broadcast", payload: ["type": "broadcast", "event": "msg", "payload": ["text": "hi"]], ref: "2", joinRef: nil)
        let actions = session.handle(push, token: nil, newChannel: nil, now: .now)
        #expect(actions.count == 1)
        guard case .broadcast(let broadcast, let ack) = actions.first else {
            Issue.record("expected a broadcast, got \(actions)")
            return
        }
        #expect(broadcast.topic == TopicKey(subTopic: "room1", isPrivate: false))
        #expect(broadcast.sender == SubscriberID(1) && broadcast.includeSender)
        #expect(broadcast.content == .json(push.payload.jsonBytes))
        // The ack carries the channel's join_ref even though the push had none (lenient join_ref).
        #expect(ack == .reply(to: "2", joinRef: "1", topic: "realtime:room1", status: "ok", response: [:]))
    }

    @Test func broadcastWithoutAckHasNoReplyAndOversizeIsRefused() {
        var limits = SessionLimits()
        limits.maxPayloadBytes = 10
        var session = SocketSession(version: .v1, limits: limits)
        _ = session.handle(message("phx_join"), token: .valid(claims), newChannel: fresh(1), now: .now)
        let small = session.handle(message("broadcast", payload: ["a": 1]), token: nil, newChannel: nil, now: .now)
        #expect(small.count == 1 && sent(small).isEmpty)
        let big = session.handle(message("broadcast", payload: ["a": "0123456789"]), token: nil, newChannel: nil, now: .now)
        #expect(big.isEmpty)

        var acked = SocketSession(version: .v1, limits: limits)
        _ = acked.handle(message("phx_join", payload: ["config": ["broadcast": ["ack": true]]]), token: .valid(claims), newChannel: fresh(1), now: .now)
        let refused = acked.handle(message("broadcast", payload: ["a": "0123456789"]), token: nil, newChannel: nil, now: .now)
        #expect(sent(refused).first?.payload == ["status": "error", "response": "payload_size_exceeded"])
    }

    @Test func aChannelOverItsEventsPerSecondIsClosed() {
        var limits = SessionLimits()
        limits.maxEventsPerSecond = 3
        var session = SocketSession(version: .v2, limits: limits)
        _ = session.handle(message("phx_join"), token: .valid(claims), newChannel: fresh(1), now: .now)
        let start = ContinuousClock.now
        for _ in 0..<3 {
            #expect(session.handle(message("broadcast", payload: ["a": 1]), token: nil, newChannel: nil, now: start).count == 1)
        }
        let over = session.handle(message("broadcast", payload: ["a": 1]), token: nil, newChannel: nil, now: start)
        #expect(sent(over).first?.payload["message"] == "Too many messages per second")
        #expect(sent(over).last?.event == "phx_close")
        #expect(session.channels.isEmpty)
        // A new window, a new channel: allowed again.
        _ = session.handle(message("phx_join"), token: .valid(claims), newChannel: fresh(2), now: .now)
        let binary = session.handleUserBroadcast(topic: "realtime:room1", ref: nil, event: "e", encoding: .json, payload: Array("{}".utf8), now: start + .seconds(2))
        #expect(binary.count == 1)
    }

    @Test func presenceTrackUntrackAndErrors() {
        var session = SocketSession(version: .v1)
        _ = session.handle(message("phx_join", payload: ["config": ["presence": ["key": "alice"]]]), token: .valid(claims), newChannel: fresh(1), now: .now)
        #expect(session.channels["realtime:room1"]?.presenceKey == "alice")
        let track = session.handle(message("presence", payload: ["type": "presence", "event": "TRACK", "payload": ["s": 1]]), token: nil, newChannel: nil, now: .now)
        #expect(track == [.track(SubscriberID(1), payload: ["s": 1], reply: .reply(to: "1", joinRef: "1", topic: "realtime:room1", status: "ok", response: [:]))])
        let notAMap = session.handle(message("presence", payload: ["event": "track", "payload": [1]]), token: nil, newChannel: nil, now: .now)
        #expect(sent(notAMap).first?.payload["response"] == ["reason": "Presence track payload must be a map"])
        let untrack = session.handle(message("presence", payload: ["event": "untrack"]), token: nil, newChannel: nil, now: .now)
        #expect(untrack.first == .untrack(SubscriberID(1)))
        let noEvent = session.handle(message("presence", payload: [:]), token: nil, newChannel: nil, now: .now)
        #expect(sent(noEvent).first?.payload["status"] == "ok")
        _ = session.handle(message("presence", payload: ["event": "untrack"]), token: nil, newChannel: nil, now: .now)
        // Five calls per window (default): the sixth is fatal.
        let limited = session.handle(message("presence", payload: ["event": "untrack"]), token: nil, newChannel: nil, now: .now)
        #expect(sent(limited).map(\.event) == ["system", "phx_close"])
        #expect(sent(limited).first?.payload["message"] == "Client presence rate limit exceeded")
    }

    @Test func generatedPresenceKeyWhenNoneIsGiven() {
        var session = SocketSession(version: .v1)
        _ = session.handle(message("phx_join", payload: ["config": ["presence": ["key": ""]]]), token: .valid(claims), newChannel: fresh(4), now: .now)
        #expect(session.channels["realtime:room1"]?.presenceKey == "generated-4")
    }

    @Test func channelsPerSocketAreLimited() {
        var limits = SessionLimits()
        limits.maxChannels = 2
        var session = SocketSession(version: .v1, limits: limits)
        for (index, topic) in ["realtime:a", "realtime:b"].enumerated() {
            _ = session.handle(message("phx_join", topic: topic), token: .valid(claims), newChannel: fresh(UInt64(index)), now: .now)
        }
        let refused = session.handle(message("phx_join", topic: "realtime:c"), token: .valid(claims), newChannel: fresh(9), now: .now)
        #expect(sent(refused).first?.payload["response"]?["reason"] == "ChannelRateLimitReached: Too many channels")
        // Joining an already joined topic again is a rejoin, not a new channel.
        let rejoin = session.handle(message("phx_join", topic: "realtime:a"), token: .valid(claims), newChannel: fresh(10), now: .now)
        #expect(sent(rejoin).last?.payload["status"] == "ok")
    }
}
