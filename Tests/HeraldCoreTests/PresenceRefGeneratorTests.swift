import HeraldCore
import Testing

@Suite struct PresenceRefGeneratorTests {
    @Test func encodesTimeNodeAndCounterAsURLSafeBase64() {
        #expect(firstRef(node: 0x090A, counter: 0x0B0C, now: 0x0102_0304_0506_0708) == "AQIDBAUGBwgJCgsM")
        #expect(firstRef(node: 0xF607, counter: 0x8899, now: 0x1778_37A1_B2C3_D4E5) == "F3g3obLD1OX2B4iZ")
        #expect(firstRef(node: 0xFFFF, counter: 0xFFFF, now: .max) == "________________")
    }

    private func firstRef(node: UInt16, counter: UInt16, now: UInt64) -> String {
        var generator = PresenceRefGenerator(node: node, counter: counter)
        return generator.next(now: now)
    }

    @Test func refsNeverRepeatEvenWithAFrozenOrSteppedBackClock() {
        var generator = PresenceRefGenerator(node: 7)
        var seen = Set<String>()
        let urlSafe = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        // More refs than the 16-bit counter can tell apart on its own.
        for index in 0..<150_000 {
            let now: UInt64 = index < 100_000 ? 1_750_000_000_000_000_000 : 1_700_000_000_000_000_000
            let ref = generator.next(now: now)
            #expect(ref.utf8.count == 16)
            #expect(ref.allSatisfy(urlSafe.contains))
            seen.insert(ref)
        }
        #expect(seen.count == 150_000)
    }

}
