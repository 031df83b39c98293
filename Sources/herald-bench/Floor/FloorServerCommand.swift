import ArgumentParser
import NIOCore
import NIOPosix

/// The raw floor peer (started by the coordinator for `--target floor`, never by hand): the least a WebSocket fan-out
/// server can do. It upgrades, takes a socket's rooms from the URL, and writes every message as one pre-encoded frame
/// to every member of the room, one flush per socket, on one event loop. No channels, tokens, JSON or queues: what it
/// costs is the cost of writing the same frame to N sockets.
struct FloorServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "floor-server",
        abstract: "Internal: the raw fan-out floor peer (docs/benchmarks.md, \"Peers\").",
        shouldDisplay: false
    )

    @Option(help: "Port on 127.0.0.1.")
    var port: Int

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let rooms = try await loop.submit { NIOLoopBound(FloorRooms(), eventLoop: loop) }.get()
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4_096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(FloorHandler(rooms: rooms.value))
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .get()
        try await server.closeFuture.get()
    }
}

/// The members of every room, on the server's one event loop.
final class FloorRooms {
    private var members: [String: [ObjectIdentifier: FloorHandler]] = [:]

    func add(_ member: FloorHandler, to topic: String) {
        members[topic, default: [:]][ObjectIdentifier(member)] = member
    }

    func remove(_ member: FloorHandler, from topic: String) {
        members[topic]?[ObjectIdentifier(member)] = nil
        if members[topic]?.isEmpty == true { members[topic] = nil }
    }

    /// Writes `frame` (the same buffer, not copied) to every member of `topic` but `sender`, unless it gets its own.
    func send(_ frame: ByteBuffer, to topic: String, from sender: FloorHandler, includingSender: Bool) {
        guard let room = members[topic] else { return }
        for member in room.values where includingSender || member !== sender {
            member.send(frame)
        }
    }
}
