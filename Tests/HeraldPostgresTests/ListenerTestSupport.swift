import Foundation
import HeraldPostgres
import Synchronization
import Testing

/// Collects listener events so that a test can await them one by one.
final class EventRecorder: Sendable {
    struct Timeout: Error, CustomStringConvertible {
        var description: String
    }

    private let events = Mutex<[ListenerEvent]>([])

    @Sendable func record(_ event: ListenerEvent) {
        events.withLock { $0.append(event) }
    }

    /// The oldest event not yet taken, waiting up to `timeout` for it.
    func next(timeout: Duration = .seconds(30)) async throws -> ListenerEvent {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let event = events.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { return event }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw Timeout(description: "no listener event within \(timeout)")
    }

    /// The next event's payload, which must be a notification on `channel`.
    func nextPayload(on channel: String = "herald_changes", timeout: Duration = .seconds(30)) async throws -> String {
        let event = try await next(timeout: timeout)
        guard case .notification(channel, let payload) = event else {
            throw Timeout(description: "expected a notification on \(channel), got \(event)")
        }
        return payload
    }

    var pending: [ListenerEvent] { events.withLock { $0 } }
}

/// Runs a listener on `url` for the duration of `body`, after its first `.listening` event.
func withListener<T>(
    url: String,
    channels: [String] = ["herald_changes", "herald_catalog"],
    _ body: (EventRecorder) async throws -> T
) async throws -> T {
    let recorder = EventRecorder()
    let listener = NotificationListener(
        databaseURL: url,
        configuration: .init(channels: channels, backoff: .init(initial: .milliseconds(50), maximum: .milliseconds(400))),
        onEvent: recorder.record
    )
    let running = Task { await listener.run() }
    defer { listener.stop() }
    #expect(try await recorder.next() == .listening(reconnected: false))
    let result = try await body(recorder)
    listener.stop()
    await running.value
    return result
}
