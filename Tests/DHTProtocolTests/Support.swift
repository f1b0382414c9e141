@testable import DHTProtocol

/// SplitMix64: a seeded generator so random ids, secrets and samples repeat run to run.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A manual clock for the state machines: seconds, moved only by the test.
struct ManualClock {
    var now: Double = 1_000
    mutating func advance(_ seconds: Double) { now += seconds }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
