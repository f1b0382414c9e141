import Testing
import Hashing
@testable import DHTProtocol

@Suite struct NodeIDs {
    @Test func bytesHexAndOrderRoundTrip() throws {
        let b: [UInt8] = Array(1...20)
        let id = try #require(NodeID(bytes: b))
        #expect(id.bytes == b)
        #expect(id.hex == "0102030405060708090a0b0c0d0e0f1011121314")
        #expect(NodeID(hex: id.hex) == id)
        #expect(NodeID(bytes: b.prefix(19)) == nil && NodeID(bytes: b + [0]) == nil)
        #expect(NodeID(bytes: [UInt8](repeating: 0xff, count: 20)) == .max)
        // Numeric order equals raw byte order, across the word boundaries too.
        let lo = try #require(NodeID(hex: "00000000000000ff" + "ffffffffffffffff" + "ffffffff"))
        let hi = try #require(NodeID(hex: "0000000000000100" + "0000000000000000" + "00000000"))
        #expect(lo < hi && !(hi < lo))
    }

    @Test func xorDistanceAndCommonPrefix() throws {
        let a = try #require(NodeID(hex: "ff00000000000000000000000000000000000000"))
        let b = try #require(NodeID(hex: "f000000000000000000000000000000000000001"))
        #expect((a ^ b).hex == "0f00000000000000000000000000000000000001")
        #expect(a.distance(to: b) == b.distance(to: a))
        #expect(a.commonPrefixLength(with: b) == 4)
        #expect(a.commonPrefixLength(with: a) == 160)
        #expect(NodeID.zero.commonPrefixLength(with: NodeID(hex: "0000000000000000000000000000000000000001")!) == 159)
        #expect(NodeID.zero.commonPrefixLength(with: NodeID(hex: "0000000000000000000000000000000100000000")!) == 127)
        #expect(NodeID.zero.commonPrefixLength(with: NodeID(hex: "0000000000000000800000000000000000000000")!) == 64)
        // Closer by XOR, whatever the numeric values.
        let target = try #require(NodeID(hex: "8000000000000000000000000000000000000000"))
        #expect((target ^ a) < (target ^ .zero))
    }

    @Test func bitsAndMasks() throws {
        let id = try #require(NodeID(hex: "8000000000000000800000000000000080000001"))
        #expect(id.bit(0) && id.bit(64) && id.bit(128) && id.bit(159))
        #expect(!id.bit(1) && !id.bit(63) && !id.bit(127) && !id.bit(158))
        #expect(id.flippingBit(0).hex == "0000000000000000800000000000000080000001")
        #expect(NodeID.mask(prefixLength: 0) == .zero && NodeID.mask(prefixLength: 160) == .max)
        #expect(NodeID.mask(prefixLength: 21).hex == "fffff80000000000000000000000000000000000")
        #expect(NodeID.mask(prefixLength: 64).hex == "ffffffffffffffff000000000000000000000000")
        #expect(NodeID.mask(prefixLength: 130).hex == "ffffffffffffffffffffffffffffffffc0000000")
    }

    @Test(arguments: [0, 1, 7, 63, 64, 65, 127, 128, 129, 159, 160])
    func randomIDsStayInTheirPrefix(_ length: Int) {
        var rng = SeededGenerator(seed: UInt64(length))
        let base = NodeID.random(using: &rng)
        let prefix = NodeIDPrefix(base, length: length)
        for _ in 0..<200 {
            let r = prefix.randomID(using: &rng)
            #expect(prefix.contains(r))
            #expect(r.commonPrefixLength(with: base) >= length)
        }
        if length > 0 { #expect(!prefix.contains(base.flippingBit(length - 1))) }
    }

    @Test func infoHashesBecomeKeys() {
        let v2 = Digests.sha256(Array("x".utf8))
        #expect(NodeID(truncating: v2).bytes == Array(v2.bytes.prefix(20)))
        let v1 = Digests.sha1(Array("x".utf8))
        #expect(NodeID(v1).bytes == v1.bytes)
    }
}

@Suite struct Addresses {
    @Test func textForms() throws {
        #expect(IPAddress("192.0.2.1") == .v4(0xc000_0201))
        #expect(IPAddress("::1") == .v6(high: 0, low: 1))
        #expect(IPAddress("2001:db8::") == .v6(high: 0x2001_0db8_0000_0000, low: 0))
        #expect(IPAddress("1:2:3:4:5:6:7:8") == .v6(high: 0x0001_0002_0003_0004, low: 0x0005_0006_0007_0008))
        for bad in ["1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "+1.2.3.4", "1..3.4", "::1::", "1:2:3:4:5:6:7:8:9", "12345::", "g::", ""] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
        #expect(IPAddress("10.0.0.255")!.description == "10.0.0.255")
        #expect(IPAddress("2001:db8::9")!.description == "2001:db8::9")
    }

    @Test func compactForms() throws {
        let e = try #require(Endpoint(compact: [10, 0, 0, 1, 0x1a, 0xe1]))
        #expect(e == Endpoint(ip: IPAddress("10.0.0.1")!, port: 6881) && e.description == "10.0.0.1:6881")
        #expect(e.compact == [10, 0, 0, 1, 0x1a, 0xe1])
        let six = [UInt8](repeating: 0, count: 15) + [1, 0, 80]
        #expect(Endpoint(compact: six) == Endpoint(ip: .v6(high: 0, low: 1), port: 80))
        #expect(Endpoint(compact: six)!.compact == six)
        #expect(Endpoint(compact: [1, 2, 3, 4, 5]) == nil && Endpoint(compact: [UInt8](repeating: 0, count: 17)) == nil)
        let n = try #require(NodeInfo(compact: bytes("abcdefghij0123456789") + [10, 0, 0, 1, 0x1a, 0xe1]))
        #expect(n.id == NodeID(bytes: bytes("abcdefghij0123456789")) && n.endpoint == e)
        #expect(NodeInfo(compact: [UInt8](repeating: 0, count: 25)) == nil)
        // Slices with non-zero start indices, as the decoder hands them over.
        let buffer = [UInt8](repeating: 9, count: 4) + n.compact
        #expect(NodeInfo(compact: buffer[4...]) == n)
    }
}

/// BEP 42's table: IP, rand, and the example id whose first 21 bits and last byte are fixed.
@Suite struct BEP42 {
    struct Row: Sendable, CustomTestStringConvertible {
        var ip: String, rand: UInt8, id: String
        var testDescription: String { ip }
    }

    static let rows = [
        Row(ip: "124.31.75.21", rand: 1, id: "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"),
        Row(ip: "21.75.31.124", rand: 86, id: "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"),
        Row(ip: "65.23.51.170", rand: 22, id: "a5d43220bc8f112a3d426c84764f8c2a1150e616"),
        Row(ip: "84.124.73.14", rand: 65, id: "1b0321dd1bb1fe518101ceef99462b947a01ff41"),
        Row(ip: "43.213.53.83", rand: 90, id: "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"),
    ]

    @Test func crc32cCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    @Test(arguments: rows)
    func theBEPsExampleIDsAreValid(_ r: Row) throws {
        let id = try #require(NodeID(hex: r.id))
        #expect(id.isValid(for: IPAddress(r.ip)!))
        // The same id is not valid from a neighbouring public address.
        let other = IPAddress(r.ip.hasPrefix("124.") ? "125.31.75.21" : "124.31.75.21")!
        #expect(!id.isValid(for: other))
    }

    @Test(arguments: rows)
    func generationReproducesTheExample(_ r: Row) throws {
        let example = try #require(NodeID(hex: r.id))
        let made = NodeID.restricted(to: IPAddress(r.ip)!, rand: r.rand, filler: example)
        #expect(made == example)
    }

    @Test func generatedIDsAreValidAndVary() {
        var rng = SeededGenerator(seed: 42)
        let ip = IPAddress("203.0.113.5")!
        var seen = Set<NodeID>()
        for _ in 0..<50 {
            let id = NodeID.restricted(to: ip, using: &rng)
            #expect(id.isValid(for: ip))
            seen.insert(id)
        }
        #expect(seen.count == 50)
        let v6 = IPAddress("2001:db8:1234:5678::1")!
        #expect(NodeID.restricted(to: v6, using: &rng).isValid(for: v6))
        // Only the top 21 bits and r matter: flipping bit 21 keeps it valid, bit 20 does not.
        let id = NodeID.restricted(to: ip, using: &rng)
        #expect(id.flippingBit(21).isValid(for: ip) && !id.flippingBit(20).isValid(for: ip))
    }

    @Test func localAddressesAreExempt() {
        let anyID = NodeID.zero
        for local in ["10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.9.9", "127.0.0.1", "::1", "fe80::1", "fd00::1"] {
            #expect(anyID.isValid(for: IPAddress(local)!), "\(local)")
        }
        for global in ["172.32.0.1", "11.0.0.1", "192.169.0.1", "2001:db8::1"] {
            #expect(!NodeID.isExemptFromRestriction(IPAddress(global)!), "\(global)")
        }
    }
}
