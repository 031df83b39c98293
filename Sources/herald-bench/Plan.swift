/// What one worker process does: which sockets it owns and the phases it runs, in lockstep with the other
/// workers (the coordinator starts every phase at the same monotonic instant). Sent to the worker as JSON.
struct WorkerPlan: Codable {
    var worker: Int
    var workers: Int
    /// The server the sockets talk to: how they upgrade, join, publish and keep alive.
    var target: Target = .herald
    var host: String
    var port: Int
    /// The JWT sent as `apikey` (Herald only).
    var token: String
    /// The local address this worker's sockets bind to (127.0.0.x): each address has its own ephemeral ports.
    var sourceAddress: String
    var heartbeatSeconds: Int = 25
    var phases: [Phase]

    /// Member `m` of every group belongs to worker `m % workers`.
    func localMembers(of group: SocketGroup) -> [Int] {
        Array(stride(from: worker, to: group.members, by: workers))
    }

    /// This worker's part of a rate spread evenly over `total` sockets of which it owns `local`.
    static func share(of rate: Double, local: Int, total: Int) -> Double {
        total > 0 ? rate * Double(local) / Double(total) : 0
    }
}

/// Sockets that join rooms of one kind: member `m` joins `realtime:<name>-<m / roomSize>`; with `echo` also a room
/// of its own, `realtime:<name>-echo-<m>`, where its messages come back to it (broadcast self: S1's shape).
struct SocketGroup: Codable, Equatable {
    var name: String
    var members: Int
    var roomSize: Int
    /// Join with presence enabled (key `<name><m>`) and track `{"t": sent ns, "m": m}` right after the join.
    var presence: Bool
    var echo = false
    /// Subscribe to postgres_changes too (Changes/ChangeSubscription.swift); nil: no bindings.
    var changes: ChangeSubscription? = nil

    var rooms: Int { (members + roomSize - 1) / roomSize }

    func topic(of member: Int) -> String { "realtime:\(name)-\(member / roomSize)" }

    /// Every room of `member`: its shared room first, then its echo room. A room of one member is an echo room.
    func rooms(of member: Int) -> [Room] {
        let size = min(roomSize, members - member / roomSize * roomSize)
        let shared = Room(topic: topic(of: member), members: size, selfDelivery: roomSize == 1)
        guard echo else { return [shared] }
        return [shared, Room(topic: "realtime:\(name)-echo-\(member)", members: 1, selfDelivery: true)]
    }

    func presenceKey(of member: Int) -> String { "\(name)\(member)" }
}

/// A room one socket is in.
struct Room: Equatable {
    var topic: String
    var members: Int
    /// The sender receives its own messages (Herald: `broadcast.self`).
    var selfDelivery: Bool
}

/// The server under test: Herald, or a peer driven by the same clients (docs/benchmarks.md, "Peers").
enum Target: String, Codable, CaseIterable, Sendable {
    /// `herald serve`: Phoenix V2 sockets that join their topics.
    case herald
    /// nginx + nchan: WebSocket subscribers of one channel per room, messages published by HTTP POST.
    case nchan
    /// `herald-bench floor-server`: rooms from the URL, each message written as one pre-encoded frame.
    case floor

    /// Frames one message to `room` becomes: nchan also sends it to the publisher (a subscriber of the channel like
    /// any other); Herald and the floor only with self delivery.
    func deliveries(of room: Room) -> Int {
        self == .nchan || room.selfDelivery ? room.members : room.members - 1
    }

    /// The nchan channel of a topic (`realtime:` dropped).
    static func channel(of topic: String) -> Substring {
        topic.hasPrefix("realtime:") ? topic.dropFirst("realtime:".count) : Substring(topic)
    }

    /// The request target of a socket in `rooms`. Herald's sockets join their rooms after the upgrade; the peers
    /// take the rooms from the URL (the floor: `+` marks a room whose sender gets its own messages back).
    func upgradePath(rooms: [Room], token: String) -> String {
        switch self {
        case .herald: "/socket/websocket?apikey=\(token)&vsn=2.0.0"
        case .nchan: "/sub/" + rooms.map { Self.channel(of: $0.topic) }.joined(separator: ",")
        case .floor: "/floor/" + rooms.map { ($0.selfDelivery ? "+" : "") + $0.topic }.joined(separator: ",")
        }
    }
}

enum Phase: Codable, Equatable {
    /// Opens the group's sockets (at most `concurrency` upgrades and joins under way at once), joining their
    /// rooms unless `join` is false.
    case connect(SocketGroup, join: Bool, concurrency: Int)
    /// Load-free time: lets diffs of the previous phase settle.
    case idle(seconds: Double)
    /// Presence churn over the joined sockets: rejoins (phx_leave, phx_join, track) and track updates.
    case churn(ChurnStep)
    /// Publishers broadcast to their rooms.
    case broadcast(BroadcastStep)
    /// Every connected, not yet joined socket joins and tracks at once; ends when every member's presence
    /// holds all members, or at the timeout.
    case storm(StormStep)
    /// Member 0 publishes one message to its room; ends when every socket that should receive it did.
    case burst(BurstStep)
    /// Closes every socket.
    case disconnect
    /// Load-free for `seconds` (the coordinator writes rows meanwhile), then until no delivery came for
    /// `quietSeconds` (at most 30 s more), as the load phases end.
    case listen(seconds: Double, quietSeconds: Double)
}

extension Phase {
    var isIdle: Bool {
        if case .idle = self { return true }
        return false
    }

    /// A one-word name (file names, progress).
    var kind: String {
        switch self {
        case .connect: "connect"
        case .idle: "idle"
        case .churn: "churn"
        case .broadcast: "broadcast"
        case .storm: "storm"
        case .burst: "burst"
        case .disconnect: "disconnect"
        case .listen: "listen"
        }
    }
}

struct ChurnStep: Codable, Equatable {
    var seconds: Double
    var rejoinsPerSecond: Double
    var updatesPerSecond: Double
    /// After the load stops, frames still arriving count for this step, until none came for this long.
    var quietSeconds: Double = 2
}

struct BroadcastStep: Codable, Equatable {
    var seconds: Double
    /// Messages published per second over all rooms (a socket in two rooms publishes into each in turn).
    var messagesPerSecond: Double
    /// Members `0..<publishersPerRoom` of each room publish.
    var publishersPerRoom: Int
    /// Size of the user payload (`{"bt":…,"pad":"…"}`).
    var payloadBytes: Int
    /// Kind-3 binary pushes (realtime-js v2) instead of JSON text pushes.
    var binary: Bool
    /// As for churn: the step ends once no frame arrived for this long after the load stopped.
    var quietSeconds: Double = 2

    /// Whether `member` of a room of `roomSize` publishes.
    func publishes(_ member: Int, roomSize: Int) -> Bool { member % roomSize < publishersPerRoom }
}

struct BurstStep: Codable, Equatable {
    var payloadBytes: Int
    /// The phase ends after this long even when some deliveries never came.
    var timeoutSeconds: Double
}

struct StormStep: Codable, Equatable {
    var group: SocketGroup
    var timeoutSeconds: Double
}
