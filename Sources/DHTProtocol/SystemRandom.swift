/// The system's random number generator, with one stored byte. `SystemRandomNumberGenerator`
/// has no stored properties, so the address of a variable of that type is unspecified; a
/// generic function that passes its `inout some RandomNumberGenerator` on (`shuffled(using:
/// &rng)`) hands that address to ThreadSanitizer's `__tsan_external_write`, which crashes with
/// SEGV (a Swift compiler bug, swiftlang/swift#66099). A generator with storage has a real
/// address; `next()` calls the system's generator directly.
public struct SystemRandom: RandomNumberGenerator {
    private var storage: UInt8 = 0

    public init() {}

    public mutating func next() -> UInt64 {
        var g = SystemRandomNumberGenerator()
        return g.next()
    }
}
