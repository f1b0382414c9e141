/// BEP 42: a node id's top 21 bits are tied to its external IP address, so a single
/// party cannot place nodes next to an info hash of its choosing.
///
/// prefix = CRC32C((ip & mask) with r in the top 3 bits), r = id[19] & 7; the id matches
/// when its first 21 bits equal the CRC's. Local addresses are exempt.
extension NodeID {
    /// An id that satisfies BEP 42 for `ip`: bits 0–20 from the CRC, the rest random, and
    /// the last byte's low 3 bits carrying `r`.
    public static func restricted(to ip: IPAddress, using rng: inout some RandomNumberGenerator) -> NodeID {
        let rand = UInt8(truncatingIfNeeded: rng.next() as UInt64)
        return restricted(to: ip, rand: rand, filler: .random(using: &rng))
    }

    public static func restricted(to ip: IPAddress) -> NodeID {
        var g = SystemRandom()
        return restricted(to: ip, using: &g)
    }

    /// Deterministic form (the BEP's test vectors fix `rand`): `rand` becomes byte 19,
    /// `filler` supplies bits 21–151.
    static func restricted(to ip: IPAddress, rand: UInt8, filler: NodeID) -> NodeID {
        let crc = bep42CRC(ip, r: rand & 7)
        let top21 = NodeID(high: UInt64(crc & 0xffff_f800) << 32, middle: 0, low: 0)
        let keep = ~NodeID.mask(prefixLength: 21) & ~NodeID(high: 0, middle: 0, low: 0xff)
        return top21 | (filler & keep) | NodeID(high: 0, middle: 0, low: UInt32(rand))
    }

    /// True when this id complies with BEP 42 for `ip`, or `ip` is exempt (local).
    public func isValid(for ip: IPAddress) -> Bool {
        if NodeID.isExemptFromRestriction(ip) { return true }
        let crc = NodeID.bep42CRC(ip, r: UInt8(truncatingIfNeeded: low) & 7)
        return UInt32(truncatingIfNeeded: high >> 32) & 0xffff_f800 == crc & 0xffff_f800
    }

    /// BEP 42's exempt blocks (10/8, 172.16/12, 192.168/16, 169.254/16, 127/8); for IPv6,
    /// which the BEP leaves open, loopback, link-local and unique-local addresses.
    public static func isExemptFromRestriction(_ ip: IPAddress) -> Bool {
        switch ip {
        case .v4(let v):
            return v >> 24 == 10 || v >> 20 == 0xac1 || v >> 16 == 0xc0a8 || v >> 16 == 0xa9fe || v >> 24 == 127
        case .v6(let h, let l):
            return (h == 0 && l == 1) || h >> 54 == 0x3fa || h >> 57 == 0x7e
        }
    }

    private static func bep42CRC(_ ip: IPAddress, r: UInt8) -> UInt32 {
        var b: [UInt8]
        switch ip {
        case .v4:
            b = ip.bytes
            for (i, m) in [0x03, 0x0f, 0x3f, 0xff].enumerated() { b[i] &= UInt8(m) }
        case .v6:
            b = Array(ip.bytes.prefix(8))
            for (i, m) in [0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff].enumerated() { b[i] &= UInt8(m) }
        }
        b[0] |= (r & 7) << 5
        return CRC32C.checksum(b)
    }
}

/// CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, initial value and final XOR
/// 0xFFFFFFFF. Only BEP 42 uses it, on 4 or 8 bytes, so a byte-wise table is plenty.
public enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    public static func checksum<C: Sequence>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var crc: UInt32 = 0xffff_ffff
        for b in bytes { crc = table[Int((crc ^ UInt32(b)) & 0xff)] ^ (crc >> 8) }
        return crc ^ 0xffff_ffff
    }
}
