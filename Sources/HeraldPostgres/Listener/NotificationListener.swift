import Foundation
import Logging
import Synchronization

/// What a ``NotificationListener`` delivers, in order.
public enum ListenerEvent: Sendable, Hashable {
    /// LISTEN is active on every channel. `reconnected` is `true` after an outage: notifications sent while
    /// the listener was away are lost, so consumers should tell their clients that changes may have been missed.
    case listening(reconnected: Bool)
    /// A notification, with its full payload (parked big payloads are already resolved).
    case notification(channel: String, payload: String)
    /// The connection broke or could not be opened; the listener keeps reconnecting with backoff.
    /// Sent once per outage, with the first error.
    case connectionLost(String)
}

/// Herald's single LISTEN connection, on its own thread, fanning notifications out to one consumer.
///
/// Events go to the `onEvent` callback, called on the listener's thread, one at a time, in the order the
/// server sent them. The callback should return quickly (hand the event over, don't do I/O): while it runs,
/// nothing else is read, which is also the only backpressure NOTIFY has (the server queues meanwhile).
///
/// Payloads of the form `{"ref": <id>}` (written by `realtime.capture_changes()` when a change does not fit
/// NOTIFY's 8000-byte limit) are replaced, before delivery, by the row taken with
/// `DELETE FROM realtime.change_payloads WHERE id = $1 RETURNING payload` on the same connection.
/// If that row is missing, the stream is treated as broken: `.connectionLost`, reconnect, `.listening(reconnected: true)`.
public final class NotificationListener: Sendable {
    /// What to listen to and how to reconnect.
    public struct Configuration: Sendable {
        /// Channels to LISTEN on (Herald: `herald_changes`, `herald_catalog`).
        public var channels: [String]
        /// Waits between reconnect attempts.
        public var backoff: ListenerStateMachine.Backoff
        /// The longest wait on the socket before checking for stop; bounds how long `stop()` takes.
        public var pollInterval: Duration
        /// `application_name` of the listener's connection unless the URL sets one.
        public var applicationName: String

        /// Creates a configuration.
        /// - Parameters:
        ///   - channels: channel names, LISTENed in this order.
        ///   - backoff: defaults to 100 ms doubling to 5 s.
        ///   - pollInterval: defaults to 100 ms.
        ///   - applicationName: defaults to `herald-listener`.
        public init(
            channels: [String],
            backoff: ListenerStateMachine.Backoff = .init(),
            pollInterval: Duration = .milliseconds(100),
            applicationName: String = "herald-listener"
        ) {
            self.channels = channels
            self.backoff = backoff
            self.pollInterval = pollInterval
            self.applicationName = applicationName
        }
    }

    private let databaseURL: String
    private let configuration: Configuration
    private let logger: Logger
    private let onEvent: @Sendable (ListenerEvent) -> Void
    private let signal = StopSignal()

    /// Creates a listener; nothing happens until ``run()``.
    /// - Parameters:
    ///   - databaseURL: `postgres://user:password@host:port/database`.
    ///   - configuration: channels and reconnect policy.
    ///   - logger: receives connection events (info for outages, debug for attempts).
    ///   - onEvent: the consumer; see the type's documentation for the calling contract.
    public init(
        databaseURL: String,
        configuration: Configuration,
        logger: Logger = Logger(label: "herald.listener"),
        onEvent: @escaping @Sendable (ListenerEvent) -> Void
    ) {
        self.databaseURL = databaseURL
        self.configuration = configuration
        self.logger = logger
        self.onEvent = onEvent
    }

    /// Listens until ``stop()`` is called or the calling task is cancelled, reconnecting as needed.
    /// Returns once the thread has ended: no event is delivered afterwards. A listener runs at most once;
    /// later calls (and calls after `stop()`) return immediately.
    public func run() async {
        guard signal.claimRun() else { return }
        let loop = ListenerLoop(
            databaseURL: databaseURL,
            configuration: configuration,
            logger: logger,
            signal: signal,
            deliver: onEvent
        )
        await signal.runOnThread(named: "herald.listener") { loop.run() }
    }

    /// Asks the listener to end; ``run()`` returns within about one poll interval.
    public func stop() {
        signal.stop()
    }
}

/// Stop request shared between the listener's owner and its thread; also makes backoff waits interruptible.
final class StopSignal: Sendable {
    /// Runs `body` (a libpq loop that watches this signal) on a thread of its own until it returns; cancelling the
    /// calling task stops it.
    func runOnThread(named name: String, _ body: @escaping @Sendable () -> Void) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let thread = Thread {
                    body()
                    continuation.resume()
                }
                thread.name = name
                thread.start()
            }
        } onCancel: {
            self.stop()
        }
    }

    private struct State {
        var hasRun = false
        var isStopped = false
    }

    private let state = Mutex(State())
    private let wakeUp = DispatchSemaphore(value: 0)

    var isStopped: Bool { state.withLock { $0.isStopped } }

    /// `true` the first time, if not stopped yet.
    func claimRun() -> Bool {
        state.withLock { state in
            defer { state.hasRun = true }
            return !state.hasRun && !state.isStopped
        }
    }

    func stop() {
        let first = state.withLock { state in
            defer { state.isStopped = true }
            return !state.isStopped
        }
        if first { wakeUp.signal() }
    }

    /// Sleeps for `duration` or until `stop()`, whichever comes first.
    func sleep(_ duration: Duration) {
        guard !isStopped else { return }
        let nanoseconds = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
        _ = wakeUp.wait(timeout: .now() + .nanoseconds(Int(nanoseconds)))
    }
}
