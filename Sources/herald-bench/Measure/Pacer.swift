/// Open-loop pacing: operations are due at a fixed rate from `start`, whatever the server's answers, so a slow
/// server shows up as latency instead of a lower offered load. A generator that falls behind catches up in bursts
/// of at most `maxBurst`; `shortfall` tells how far behind it ended.
struct Pacer {
    let start: UInt64
    /// Operations per second.
    let rate: Double
    let maxBurst: Int
    private(set) var issued = 0

    init(start: UInt64, rate: Double, maxBurst: Int = 1_000) {
        self.start = start
        self.rate = rate
        self.maxBurst = maxBurst
    }

    /// Operations scheduled by `now` (monotonic ns) since `start`.
    func scheduled(at now: UInt64) -> Int {
        guard now > start, rate > 0 else { return 0 }
        return Int(Double(now - start) * rate / 1e9)
    }

    /// How many operations to issue now; counts them as issued.
    mutating func due(at now: UInt64) -> Int {
        let due = min(max(0, scheduled(at: now) - issued), maxBurst)
        issued += due
        return due
    }

    /// Scheduled but not issued by `now`.
    func shortfall(at now: UInt64) -> Int { max(0, scheduled(at: now) - issued) }
}
