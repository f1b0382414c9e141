/// A 32-byte SHA-256 digest. Stored as four machine words so arrays of digests are
/// compact and comparisons are cheap; the words hold the digest's bytes in memory
/// order, so `withUnsafeBytes` yields the digest as it appears on the wire.
public struct SHA256Digest: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0, w3: UInt64 = 0

    public static let zero = SHA256Digest()
    public static let byteCount = 32

    public init() {}

    /// `bytes` must hold exactly 32 bytes.
    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 32 else { return nil }
        var d = SHA256Digest()
        withUnsafeMutableBytes(of: &d) { $0.copyMemory(from: bytes) }
        self = d
    }

    public init?(bytes: [UInt8]) { self.init(bytes: bytes[...]) }
    public init?(bytes: ArraySlice<UInt8>) {
        guard let d = bytes.withUnsafeBytes({ SHA256Digest(bytes: $0) }) else { return nil }
        self = d
    }

    public init?(hex: String) {
        guard let bytes = HexCoding.decode(hex), bytes.count == 32 else { return nil }
        self.init(bytes: bytes)
    }

    public var bytes: [UInt8] { withUnsafeBytes(of: self) { Array($0) } }
    public var hex: String { withUnsafeBytes(of: self) { HexCoding.encode($0) } }
    public var description: String { hex }
    public var isZero: Bool { self == .zero }

    /// Raw byte order (the order bencoded dict keys sort in).
    public static func < (a: SHA256Digest, b: SHA256Digest) -> Bool {
        (a.w0.bigEndian, a.w1.bigEndian, a.w2.bigEndian, a.w3.bigEndian)
            < (b.w0.bigEndian, b.w1.bigEndian, b.w2.bigEndian, b.w3.bigEndian)
    }
}

/// A 20-byte SHA-1 digest (v1 info hashes and v1 piece hashes).
public struct SHA1Digest: Hashable, Sendable, CustomStringConvertible {
    public var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt32 = 0

    public static let byteCount = 20

    public init() {}

    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 20 else { return nil }
        var d = SHA1Digest()
        withUnsafeMutableBytes(of: &d) { UnsafeMutableRawBufferPointer(rebasing: $0[0..<20]).copyMemory(from: bytes) }
        self = d
    }

    public init?(bytes: [UInt8]) { self.init(bytes: bytes[...]) }
    public init?(bytes: ArraySlice<UInt8>) {
        guard let d = bytes.withUnsafeBytes({ SHA1Digest(bytes: $0) }) else { return nil }
        self = d
    }

    public init?(hex: String) {
        guard let bytes = HexCoding.decode(hex), bytes.count == 20 else { return nil }
        self.init(bytes: bytes)
    }

    public var bytes: [UInt8] { withUnsafeBytes(of: self) { Array(UnsafeRawBufferPointer(rebasing: $0[0..<20])) } }
    public var hex: String { withUnsafeBytes(of: self) { HexCoding.encode(UnsafeRawBufferPointer(rebasing: $0.prefix(20))) } }
    public var description: String { hex }
}

public enum HexCoding {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode<C: Sequence>(_ bytes: C) -> String where C.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func encode(_ raw: UnsafeRawBufferPointer) -> String {
        encode(raw.bindMemory(to: UInt8.self))
    }

    /// Decodes upper- or lower-case hex; nil on odd length or a non-hex character.
    public static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
