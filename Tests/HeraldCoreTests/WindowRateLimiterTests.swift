import HeraldCore
import Testing

@Suite struct WindowRateLimiterTests {
    private let start = ContinuousClock.now

    /// Whether each call, made at these offsets from `start`, is allowed.
    private func answers(_ limiter: inout WindowRateLimiter, at offsets: [Duration]) -> [Bool] {
        offsets.map { limiter.allowCall(at: start + $0) }
    }

    @Test func defaultsToFiveCallsPerThirtySeconds() {
        var limiter = WindowRateLimiter()
        let calls: [Duration] = [.seconds(0), .seconds(1), .seconds(2), .seconds(3), .seconds(4), .seconds(10)]
        #expect(answers(&limiter, at: calls) == [true, true, true, true, true, false])
        // The window's last instant still belongs to it; the next one opens a new window.
        #expect(answers(&limiter, at: [.seconds(30), .seconds(30) + .milliseconds(1)]) == [false, true])
        #expect(WindowRateLimiter.presenceExceededMessage == "Client presence rate limit exceeded")
    }

    @Test func theWindowOpensAtTheFirstCallAndRefusalsDoNotExtendIt() {
        var limiter = WindowRateLimiter(maxCalls: 2, window: .seconds(1))
        let calls: [Duration] = [100_000, 100_500, 100_900, 101_000, 101_001, 101_002, 101_003].map { .milliseconds($0) }
        #expect(answers(&limiter, at: calls) == [true, true, false, false, true, true, false])
    }

    @Test func callsSpreadOutNeverHitTheLimit() {
        var limiter = WindowRateLimiter()
        let calls = (0..<100).map { Duration.seconds(7 * $0) }
        #expect(answers(&limiter, at: calls).allSatisfy { $0 })
    }
}
