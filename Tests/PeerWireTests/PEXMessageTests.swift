import Bencode
import Testing
@testable import PeerWire

/// BEP 11 `ut_pex` payloads, written by hand in the form libtorrent sends (every key, the
/// empty ones included) and checked against the codec both ways.
@Suite struct PEXMessageTests {
    /// d5:added12:<10.0.0.1:6881><127.0.0.2:80>7:added.f2:\x12\x10 6:added618:<[2001:db8::1]:443>
    /// 8:added6.f1:\x01 7:dropped6:<192.168.1.9:51413> 8:dropped60: e
    let wire: [UInt8] = Array("d5:added12:".utf8) + [10, 0, 0, 1, 0x1a, 0xe1, 127, 0, 0, 2, 0, 80]
        + Array("7:added.f2:".utf8) + [0x12, 0x10]
        + Array("6:added618:".utf8) + [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1, 0x01, 0xbb]
        + Array("8:added6.f1:".utf8) + [0x01]
        + Array("7:dropped6:".utf8) + [192, 168, 1, 9, 0xc8, 0xd5]
        + Array("8:dropped60:".utf8) + Array("e".utf8)

    let v6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]

    @Test func decodesAndEncodesBEP11Form() throws {
        let m = try PEXMessage.decode(wire)
        #expect(m.added == [PEXEntry(PEXPeer(ip: [10, 0, 0, 1], port: 6881), flags: [.reachable, .seed]),
                            PEXEntry(PEXPeer(ip: [127, 0, 0, 2], port: 80), flags: .reachable),
                            PEXEntry(PEXPeer(ip: v6, port: 443), flags: .encryption)])
        #expect(m.dropped == [PEXPeer(ip: [192, 168, 1, 9], port: 51413)])
        #expect(m.encode() == wire)
        #expect(m.added[2].peer.description == "[2001:db8::1]:443")
        #expect(m.added[0].peer.description == "10.0.0.1:6881")
    }

    @Test func absentKeysAreEmptyAndFlagsAreOptional() throws {
        let m = try PEXMessage.decode(Array("d5:added6:".utf8) + [1, 2, 3, 4, 0, 1] + Array("e".utf8))
        #expect(m.added == [PEXEntry(PEXPeer(ip: [1, 2, 3, 4], port: 1))])
        #expect(m.dropped.isEmpty)
        #expect(try PEXMessage.decode(Array("d1:xi5ee".utf8)) == PEXMessage())
    }

    @Test func malformedPayloadsAreRefused() {
        #expect(throws: PEXMessageError.notADictionary) { try PEXMessage.decode(Array("li1ee".utf8)) }
        #expect(throws: PEXMessageError.notADictionary) { try PEXMessage.decode(Array("d5:added".utf8)) }
        #expect(throws: PEXMessageError.notADictionary) { try PEXMessage.decode([]) }
        #expect(throws: PEXMessageError.badField("added is a integer, not a string")) { try PEXMessage.decode(Array("d5:addedi7ee".utf8)) }
        #expect(throws: PEXMessageError.badField("dropped6 is a list, not a string")) { try PEXMessage.decode(Array("d8:dropped6lee".utf8)) }
        #expect(throws: PEXMessageError.badField("added is 7 bytes, not a multiple of 6")) {
            try PEXMessage.decode(Array("d5:added7:".utf8) + [1, 2, 3, 4, 5, 6, 7] + Array("e".utf8))
        }
        #expect(throws: PEXMessageError.badField("added.f has 2 flags for 1 peers")) {
            try PEXMessage.decode(Array("d5:added6:".utf8) + [1, 2, 3, 4, 0, 1] + Array("7:added.f2:".utf8) + [0, 0] + Array("e".utf8))
        }
    }

    @Test func anOversizedPayloadIsRefusedBeforeDecoding() {
        let big = Array("d5:added".utf8) + Array(String(PEXMessage.maxSize).utf8) + [UInt8(ascii: ":")] + [UInt8](repeating: 1, count: PEXMessage.maxSize) + Array("e".utf8)
        #expect(throws: PEXMessageError.tooLarge(size: big.count)) { try PEXMessage.decode(big) }
    }

    @Test func fiveThousandPeersDecodeWithinTheSizeCap() throws {
        let peers = (0..<5000).map { PEXPeer(ip: [127, 0, UInt8($0 >> 8), UInt8($0 & 0xff)], port: 1) }
        let bytes = PEXMessage(added: peers.map { PEXEntry($0) }).encode()
        #expect(bytes.count < PEXMessage.maxSize)
        #expect(try PEXMessage.decode(bytes).added.count == 5000)
    }

    @Test func ipv6TextIsShortened() {
        #expect(PEXPeer(ip: [UInt8](repeating: 0, count: 15) + [1], port: 1).host == "::1")
        #expect(PEXPeer(ip: [0xfe, 0x80] + [UInt8](repeating: 0, count: 12) + [0, 5], port: 1).host == "fe80::5")
        #expect(PEXPeer(ip: [0x20, 0x01, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1], port: 1).host == "2001:1:0:1:0:1:0:1")
    }
}
