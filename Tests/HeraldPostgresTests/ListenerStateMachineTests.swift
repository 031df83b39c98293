import HeraldPostgres
import Testing

@Suite("ListenerStateMachine")
struct ListenerStateMachineTests {
    @Test func firstConnectionListensWithoutReconnectedFlag() {
        var machine = ListenerStateMachine()
        #expect(machine.start() == .connect)
        #expect(machine.connected() == .startListening(reconnected: false))
    }

    @Test func lossIsReportedOnceAndRetriedWithDoublingBackoff() {
        var machine = ListenerStateMachine(backoff: .init(initial: .milliseconds(100), maximum: .seconds(5)))
        _ = machine.start()
        _ = machine.connected()
        #expect(machine.connectionLost("terminated") == .waitBeforeReconnecting(delay: .milliseconds(100), report: "terminated"))
        var delays: [Duration] = []
        for _ in 0..<8 {
            #expect(machine.waitElapsed() == .connect)
            guard case .waitBeforeReconnecting(let delay, let report) = machine.connectFailed("refused") else {
                Issue.record("expected a wait")
                return
            }
            #expect(report == nil)
            delays.append(delay)
        }
        #expect(delays == [200, 400, 800, 1600, 3200, 5000, 5000, 5000].map { .milliseconds($0) })
        #expect(machine.waitElapsed() == .connect)
        #expect(machine.connected() == .startListening(reconnected: true))
    }

    @Test func successResetsTheBackoffAndTheNextOutageIsReportedAgain() {
        var machine = ListenerStateMachine()
        _ = machine.start()
        _ = machine.connected()
        _ = machine.connectionLost("first")
        _ = machine.waitElapsed()
        _ = machine.connectFailed("still down")
        _ = machine.waitElapsed()
        #expect(machine.connected() == .startListening(reconnected: true))
        #expect(machine.connectionLost("second") == .waitBeforeReconnecting(delay: .milliseconds(100), report: "second"))
    }

    @Test func initialFailureIsReportedAndLaterSuccessIsNotAReconnect() {
        var machine = ListenerStateMachine()
        _ = machine.start()
        #expect(machine.connectFailed("refused") == .waitBeforeReconnecting(delay: .milliseconds(100), report: "refused"))
        #expect(machine.waitElapsed() == .connect)
        #expect(machine.connected() == .startListening(reconnected: false))
    }

    @Test func stopWinsOverEverything() {
        var machine = ListenerStateMachine()
        _ = machine.start()
        #expect(machine.stop() == .finish)
        #expect(machine.connected() == .finish)
        #expect(machine.connectionLost("x") == .finish)
        #expect(machine.connectFailed("x") == .finish)
        #expect(machine.waitElapsed() == .finish)
        #expect(machine.start() == .finish)
    }

    @Test func backoffNeverOverflows() {
        let backoff = ListenerStateMachine.Backoff(initial: .milliseconds(100), maximum: .seconds(5))
        #expect(backoff.delay(afterFailures: 0) == .milliseconds(100))
        #expect(backoff.delay(afterFailures: 1) == .milliseconds(100))
        #expect(backoff.delay(afterFailures: 10_000) == .seconds(5))
    }
}
