import Histogram

/// Latencies in microseconds in an HdrHistogram (3 significant digits, up to 10 minutes). Workers send theirs to
/// the coordinator as `[[value, count], …]` pairs of the recorded buckets, which merge exactly.
struct LatencyHistogram: Codable {
    private static let highestMicroseconds: UInt64 = 600_000_000
    private(set) var histogram = Histogram<UInt64>(highestTrackableValue: highestMicroseconds, numberOfSignificantValueDigits: .three)

    init() {}

    var count: UInt64 { histogram.totalCount }

    /// Records `end - start` (monotonic ns); a start after the end (a clock read racing a send) counts as 0.
    mutating func record(from start: UInt64, to end: UInt64) {
        let microseconds = end > start ? (end - start) / 1_000 : 0
        histogram.record(min(microseconds, Self.highestMicroseconds))
    }

    mutating func add(_ other: LatencyHistogram) {
        for bucket in other.histogram.recordedValues() {
            histogram.record(bucket.value, count: bucket.count)
        }
    }

    /// Milliseconds at the usual percentiles; nil when nothing was recorded.
    var summary: LatencySummary? {
        guard count > 0 else { return nil }
        func milliseconds(_ microseconds: UInt64) -> Double { (Double(microseconds) / 10).rounded() / 100 }
        return LatencySummary(
            samples: count,
            p50: milliseconds(histogram.valueAtPercentile(50)),
            p95: milliseconds(histogram.valueAtPercentile(95)),
            p99: milliseconds(histogram.valueAtPercentile(99)),
            p999: milliseconds(histogram.valueAtPercentile(99.9)),
            max: milliseconds(histogram.max),
            mean: (histogram.mean / 10).rounded() / 100
        )
    }

    init(from decoder: any Decoder) throws {
        let pairs = try [[UInt64]](from: decoder)
        for pair in pairs where pair.count == 2 {
            histogram.record(min(pair[0], Self.highestMicroseconds), count: pair[1])
        }
    }

    func encode(to encoder: any Encoder) throws {
        try histogram.recordedValues().map { [$0.value, $0.count] }.encode(to: encoder)
    }
}

/// Percentiles in milliseconds.
struct LatencySummary: Codable, Equatable {
    var samples: UInt64
    var p50: Double
    var p95: Double
    var p99: Double
    var p999: Double
    var max: Double
    var mean: Double
}
