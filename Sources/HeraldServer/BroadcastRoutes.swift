import HTTPTypes
import HeraldCore
import Hummingbird
import NIOCore

/// `POST /api/broadcast` and `POST /api/broadcast/:topic/events/:event` (also under `/realtime/v1`): messages
/// from servers and scripts into the hub. Decisions are `RESTBroadcast`'s; this file only does HTTP.
enum BroadcastRoutes {
    static func add(to router: Router<BasicRequestContext>, verifier: TokenVerifier, policies: ChannelPolicies, hub: Hub, configuration: ServerConfiguration) {
        let maxPayload = configuration.sessionLimits.maxPayloadBytes
        let maxBody = configuration.maxMessageBytes
        for prefix in ["/api", "/realtime/v1/api"] {
            router.post(RouterPath("\(prefix)/broadcast")) { request, _ -> Response in
                guard let claims = authorizedClaims(request, verifier: verifier) else { return response(.unauthorized) }
                let body = try await request.body.collect(upTo: maxBody)
                switch RESTBroadcast.batch(Array(body.readableBytesView), maxPayloadBytes: maxPayload) {
                case .success(let messages):
                    // Private messages go only to topics the write policy allows (each topic asked once).
                    var writable: [String: Bool] = [:]
                    for message in messages where message.topic.isPrivate && writable[message.topic.subTopic] == nil {
                        writable[message.topic.subTopic] = await policies.mayWrite(subTopic: message.topic.subTopic, claims: claims, .broadcast)
                    }
                    for message in messages where !message.topic.isPrivate || writable[message.topic.subTopic] == true {
                        hub.broadcast(message)
                    }
                    return Response(status: .accepted)
                case .failure(let refusal):
                    return response(refusal)
                }
            }
            router.post(RouterPath("\(prefix)/broadcast/:topic/events/:event")) { request, context -> Response in
                guard let claims = authorizedClaims(request, verifier: verifier) else { return response(.unauthorized) }
                let topic = Admission.percentDecode(Substring(context.parameters.get("topic") ?? ""))
                let event = Admission.percentDecode(Substring(context.parameters.get("event") ?? ""))
                let body = try await request.body.collect(upTo: maxBody)
                let isPrivate = request.uri.queryParameters.get("private").map { $0.lowercased() == "true" } ?? false
                let outcome = RESTBroadcast.single(
                    topic: topic,
                    event: event,
                    contentType: request.headers[.contentType],
                    body: Array(body.readableBytesView),
                    isPrivate: isPrivate,
                    maxPayloadBytes: maxPayload
                )
                switch outcome {
                case .success(let message):
                    if isPrivate, !(await policies.mayWrite(subTopic: topic, claims: claims, .broadcast)) {
                        return response(.forbidden)
                    }
                    hub.broadcast(message)
                    return Response(status: .accepted)
                case .failure(let refusal):
                    return response(refusal)
                }
            }
        }
    }

    /// The claims of a valid JWT from `Authorization: Bearer` (preferred) or the `apikey` header.
    static func authorizedClaims(_ request: Request, verifier: TokenVerifier) -> TokenClaims? {
        let bearer = request.headers[.authorization].flatMap { value -> String? in
            let parts = value.split(separator: " ", maxSplits: 1)
            return parts.count == 2 && parts[0].lowercased() == "bearer" ? String(parts[1]) : nil
        }
        guard let token = bearer ?? request.headers[HTTPField.Name("apikey")!],
            case .valid(let claims) = verifier.verify(token, now: WallClock.seconds())
        else { return nil }
        return claims
    }

    static func response(_ refusal: RESTBroadcast.Refusal) -> Response {
        Response(
            status: .init(code: refusal.status),
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: refusal.body.jsonBytes))
        )
    }
}
