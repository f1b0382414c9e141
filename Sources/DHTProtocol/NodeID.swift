import Hashing

/// A 160-bit DHT key: a node id, or the 20-byte info hash a lookup targets (both live in
/// the same XOR keyspace). Held as three big-endian numbers so that XOR, comparison of
/// distances and prefix lengths are word operations; `bytes` is the wire form.
public struct NodeID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Bytes 0–7, 8–15 and 16–19 read as big-endian integers.
    public private(set) var high: UInt64
    public private(set) var middle: UInt64
    public private(set) var low: UInt32

    public static let byteCount = 20
    public static let bitCount = 160
    public static let zero = NodeID(high: 0, middle: 0, low: 0)
    public static let max = NodeID(high: .max, middle: .max, low: .max)

    public init(high: UInt64, middle: UInt64, low: UInt32) {
        self.high = high
        self.middle = middle
        self.low = low
    }

    /// nil unless exactly 20 bytes.
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        guard bytes.count == 20 else { return nil }
        var h: UInt64 = 0, m: UInt64 = 0, l: UInt32 = 0
        for (i, b) in bytes.enumerated() {
            switch i {
            case 0..<8: h = h << 8 | UInt64(b)
            case 8..<16: m = m << 8 | UInt64(b)
            default: l = l << 8 | UInt32(b)
            }
        }
        self.init(high: h, middle: m, low: l)
    }

    public init?(hex: String) {
        guard let b = HexCoding.decode(hex) else { return nil }
        self.init(bytes: b)
    }

    /// A v1 info hash.
    public init(_ digest: SHA1Digest) { self.init(bytes: digest.bytes)! }

    /// The short hash of a v2 info hash: its first 20 bytes, which is what the DHT carries.
    public init(truncating digest: SHA256Digest) { self.init(bytes: digest.bytes.prefix(20))! }

    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(20)
        for s in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: high >> UInt64(s))) }
        for s in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: middle >> UInt64(s))) }
        for s in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: low >> UInt32(s))) }
        return out
    }

    public var hex: String { HexCoding.encode(bytes) }
    public var description: String { hex }

    /// The XOR metric. The result is itself a 160-bit number; compare results with `<`.
    public static func ^ (a: NodeID, b: NodeID) -> NodeID {
        NodeID(high: a.high ^ b.high, middle: a.middle ^ b.middle, low: a.low ^ b.low)
    }

    public static func & (a: NodeID, b: NodeID) -> NodeID {
        NodeID(high: a.high & b.high, middle: a.middle & b.middle, low: a.low & b.low)
    }

    public static func | (a: NodeID, b: NodeID) -> NodeID {
        NodeID(high: a.high | b.high, middle: a.middle | b.middle, low: a.low | b.low)
    }

    public static prefix func ~ (a: NodeID) -> NodeID { NodeID(high: ~a.high, middle: ~a.middle, low: ~a.low) }

    public func distance(to other: NodeID) -> NodeID { self ^ other }

    /// Numeric order of the 160-bit big-endian values (equal to raw byte order).
    public static func < (a: NodeID, b: NodeID) -> Bool {
        (a.high, a.middle, a.low) < (b.high, b.middle, b.low)
    }

    /// Leading zero bits, 0…160 (160 only for zero).
    public var leadingZeroBitCount: Int {
        if high != 0 { return high.leadingZeroBitCount }
        if middle != 0 { return 64 + middle.leadingZeroBitCount }
        return 128 + low.leadingZeroBitCount
    }

    /// How many leading bits the two ids share, 0…160.
    public func commonPrefixLength(with other: NodeID) -> Int { (self ^ other).leadingZeroBitCount }

    /// Bit `index` counted from the most significant (bit 0 is the top bit of byte 0).
    public func bit(_ index: Int) -> Bool {
        precondition((0..<160).contains(index), "bit index out of range")
        return (self & NodeID.singleBit(index)) != .zero
    }

    public func flippingBit(_ index: Int) -> NodeID {
        precondition((0..<160).contains(index), "bit index out of range")
        return self ^ NodeID.singleBit(index)
    }

    /// An id with the top `length` bits set.
    public static func mask(prefixLength length: Int) -> NodeID {
        precondition((0...160).contains(length), "prefix length out of range")
        // Swift's `<<` on fixed-width integers yields 0 for shifts of the full width or more.
        let h: UInt64 = length == 0 ? 0 : UInt64.max << UInt64(Swift.max(0, 64 - length))
        let m: UInt64 = length <= 64 ? 0 : UInt64.max << UInt64(Swift.max(0, 128 - length))
        let l: UInt32 = length <= 128 ? 0 : UInt32.max << UInt32(Swift.max(0, 160 - length))
        return NodeID(high: h, middle: m, low: l)
    }

    private static func singleBit(_ index: Int) -> NodeID {
        mask(prefixLength: index + 1) & ~mask(prefixLength: index)
    }

    public static func random(using rng: inout some RandomNumberGenerator) -> NodeID {
        NodeID(high: rng.next(), middle: rng.next(), low: rng.next())
    }

    public static func random() -> NodeID {
        var g = SystemRandom()
        return random(using: &g)
    }
}

/// The ids whose first `length` bits equal those of `bits`: the range a routing-table
/// bucket covers, and where a bucket refresh picks its random target.
public struct NodeIDPrefix: Hashable, Sendable, CustomStringConvertible {
    /// The prefix bits; every bit past `length` is zero.
    public let bits: NodeID
    public let length: Int

    public init(_ id: NodeID, length: Int) {
        precondition((0...160).contains(length), "prefix length out of range")
        self.bits = id & NodeID.mask(prefixLength: length)
        self.length = length
    }

    /// The whole keyspace.
    public static let all = NodeIDPrefix(.zero, length: 0)

    public func contains(_ id: NodeID) -> Bool {
        (id & NodeID.mask(prefixLength: length)) == bits
    }

    public func randomID(using rng: inout some RandomNumberGenerator) -> NodeID {
        let free = NodeID.random(using: &rng) & ~NodeID.mask(prefixLength: length)
        return bits | free
    }

    public var description: String { "\(bits.hex)/\(length)" }
}
