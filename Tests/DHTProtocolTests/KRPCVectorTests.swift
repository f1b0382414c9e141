import Testing
@testable import DHTProtocol

/// Byte-exact examples from BEP 5 (beps/bep_0005.rst), plus hand-written messages for the
/// keys BEPs 32, 33, 42 and 43 add. Expected values are written out, not derived with the
/// codec under test.
private let idA = NodeID(bytes: bytes("abcdefghij0123456789"))!
private let idM = NodeID(bytes: bytes("mnopqrstuvwxyz123456"))!
private let id0 = NodeID(bytes: bytes("0123456789abcdefghij"))!
private let aa = bytes("aa")

private func decode(_ datagram: [UInt8], asked method: KRPCMethod? = nil) throws(KRPCError) -> KRPCMessage {
    try KRPCMessage(decoding: datagram, expectedMethod: { t in t == aa ? method : nil })
}

struct Vector: Sendable, CustomTestStringConvertible {
    var name: String
    var wire: [UInt8]
    var asked: KRPCMethod?
    var message: KRPCMessage
    var testDescription: String { name }
}

@Suite struct BEP5Vectors {
    static let vectors: [Vector] = [
        Vector(name: "ping query", wire: bytes("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"), asked: nil,
               message: .query(aa, KRPCQuery(sender: idA, arguments: .ping))),
        Vector(name: "ping response", wire: bytes("d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re"), asked: .ping,
               message: .response(aa, KRPCResponse(id: idM))),
        Vector(name: "find_node query",
               wire: bytes("d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe"), asked: nil,
               message: .query(aa, KRPCQuery(sender: idA, arguments: .findNode(.init(target: idM))))),
        Vector(name: "get_peers query",
               wire: bytes("d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe"), asked: nil,
               message: .query(aa, KRPCQuery(sender: idA, arguments: .getPeers(.init(infoHash: idM))))),
        // "axje.u" = 97.120.106.101 port 0x2e75; "idhtnm" = 105.100.104.116 port 0x6e6d.
        Vector(name: "get_peers response with peers",
               wire: bytes("d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re"), asked: .getPeers,
               message: .response(aa, KRPCResponse(id: idA, values: [
                   Endpoint(ip: IPAddress("97.120.106.101")!, port: 0x2e75), Endpoint(ip: IPAddress("105.100.104.116")!, port: 0x6e6d),
               ], token: bytes("aoeusnth")))),
        // The BEP's bencoded line leaves out the implied_port its dictionary shows; both forms are here.
        Vector(name: "announce_peer query (bencoded line)",
               wire: bytes("d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe"),
               asked: nil,
               message: .query(aa, KRPCQuery(sender: idA, arguments: .announcePeer(.init(infoHash: idM, port: 6881, token: bytes("aoeusnth")))))),
        Vector(name: "announce_peer query (dictionary, implied_port 1)",
               wire: bytes("d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe"),
               asked: nil,
               message: .query(aa, KRPCQuery(sender: idA, arguments: .announcePeer(
                   .init(infoHash: idM, port: 6881, impliedPort: true, token: bytes("aoeusnth")))))),
        Vector(name: "announce_peer response", wire: bytes("d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re"), asked: .announcePeer,
               message: .response(aa, KRPCResponse(id: idM))),
        Vector(name: "generic error", wire: bytes("d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee"), asked: .ping,
               message: .error(aa, .generic, "A Generic Error Ocurred")),
    ]

    @Test(arguments: vectors)
    func decodesToTheModel(_ v: Vector) throws {
        #expect(try decode(v.wire, asked: v.asked) == v.message)
    }

    @Test(arguments: vectors)
    func encodesToTheExactBytes(_ v: Vector) {
        #expect(v.message.encoded() == v.wire)
    }

    @Test(arguments: vectors)
    func everyTruncationIsRejected(_ v: Vector) {
        for n in 0..<v.wire.count {
            #expect(throws: KRPCError.self) { try decode(Array(v.wire.prefix(n)), asked: v.asked) }
        }
    }

    @Test(arguments: vectors)
    func trailingBytesAreRejected(_ v: Vector) {
        #expect(throws: KRPCError.bencoding(.trailingData(offset: v.wire.count))) { try decode(v.wire + [0x65], asked: v.asked) }
    }

    /// The BEP's nodes examples are placeholders ("def456...", 9 bytes), which a strict
    /// decoder must refuse; the same messages with one real 26-byte entry decode.
    @Test func placeholderNodesAreRefusedRealOnesDecode() throws {
        #expect(throws: KRPCError.wrongLength(key: "r.nodes", expected: "a multiple of 26", actual: 9)) {
            try decode(bytes("d1:rd2:id20:0123456789abcdefghij5:nodes9:def456...e1:t2:aa1:y1:re"), asked: .findNode)
        }
        #expect(throws: KRPCError.wrongLength(key: "r.nodes", expected: "a multiple of 26", actual: 9)) {
            try decode(bytes("d1:rd2:id20:abcdefghij01234567895:nodes9:def456...5:token8:aoeusnthe1:t2:aa1:y1:re"), asked: .getPeers)
        }
        let entry = bytes("mnopqrstuvwxyz123456") + [127, 0, 0, 1, 0x1a, 0xe1]
        let node = NodeInfo(id: idM, endpoint: Endpoint(ip: .v4(0x7f00_0001), port: 6881))

        let findNode = bytes("d1:rd2:id20:0123456789abcdefghij5:nodes26:") + entry + bytes("e1:t2:aa1:y1:re")
        let f = try decode(findNode, asked: .findNode)
        #expect(f == .response(aa, KRPCResponse(id: id0, nodes: [node])))
        #expect(f.encoded() == findNode)

        let getPeers = bytes("d1:rd2:id20:abcdefghij01234567895:nodes26:") + entry + bytes("5:token8:aoeusnthe1:t2:aa1:y1:re")
        let g = try decode(getPeers, asked: .getPeers)
        #expect(g == .response(aa, KRPCResponse(id: idA, nodes: [node], token: bytes("aoeusnth"))))
        #expect(g.encoded() == getPeers)
    }
}

@Suite struct KRPCExtensions {
    /// BEP 42 `ip`, BEP 43 `ro`, client `v`, BEP 32 `nodes6` and `want`, BEP 33 flags and filters.
    @Test func topLevelIPVersionAndReadOnly() throws {
        let wire = bytes("d1:ad2:id20:abcdefghij0123456789e2:ip6:") + [192, 0, 2, 7, 0x1a, 0xe1]
            + bytes("1:q4:ping2:roi1e1:t2:aa1:v4:WS011:y1:qe")
        let m = try decode(wire)
        #expect(m.readOnly && m.version == bytes("WS01"))
        #expect(m.requesterAddress == Endpoint(ip: IPAddress("192.0.2.7")!, port: 6881))
        #expect(m.encoded() == wire)
    }

    @Test func responseWithRequesterAddressV6() throws {
        let v6 = [UInt8](repeating: 0, count: 15) + [1]
        let wire = bytes("d2:ip18:") + v6 + [0x1a, 0xe1] + bytes("1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re")
        let m = try decode(wire, asked: .ping)
        #expect(m == .response(aa, KRPCResponse(id: idM), requester: Endpoint(ip: IPAddress("::1")!, port: 6881)))
        #expect(m.encoded() == wire)
    }

    @Test func wantListAndScrapeFlags() throws {
        let wire = bytes("d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234566:noseedi1e6:scrapei1e4:wantl2:n42:n6ee1:q9:get_peers1:t2:aa1:y1:qe")
        let m = try decode(wire)
        #expect(m == .query(aa, KRPCQuery(sender: idA, arguments: .getPeers(.init(infoHash: idM, want: [.n4, .n6], noSeed: true, scrape: true)))))
        #expect(m.encoded() == wire)
        // Unknown want names are ignored; n6 alone survives.
        let find = bytes("d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz1234564:wantl2:n62:n8ee1:q9:find_node1:t2:aa1:y1:qe")
        #expect(try decode(find) == .query(aa, KRPCQuery(sender: idA, arguments: .findNode(.init(target: idM, want: .n6)))))
    }

    @Test func seedAnnounce() throws {
        let wire = bytes("d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti1e4:seedi1e5:token1:xe1:q13:announce_peer1:t0:1:y1:qe")
        let m = try decode(wire)
        #expect(m == .query([], KRPCQuery(sender: idA, arguments: .announcePeer(.init(infoHash: idM, port: 1, token: bytes("x"), seed: true)))))
        #expect(m.encoded() == wire)
    }

    @Test func nodes6ValuesV6AndBloomFilters() throws {
        let addr6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [9]
        let node6 = bytes("0123456789abcdefghij") + addr6 + [0x1f, 0x90]
        let bfsd = [UInt8](repeating: 0xf0, count: 256), bfpe = [UInt8](repeating: 0x0f, count: 256)
        let wire = bytes("d1:rd4:BFpe256:") + bfpe + bytes("4:BFsd256:") + bfsd + bytes("2:id20:abcdefghij01234567896:nodes638:") + node6
            + bytes("5:token2:tk6:valuesl18:") + addr6 + [0x1a, 0xe1] + bytes("ee1:t2:aa1:y1:re")
        let m = try decode(wire, asked: .getPeers)
        let expected = KRPCResponse(id: idA, nodes6: [NodeInfo(id: id0, endpoint: Endpoint(ip: IPAddress("2001:db8::9")!, port: 8080))],
                                    values: [Endpoint(ip: IPAddress("2001:db8::9")!, port: 6881)], token: bytes("tk"),
                                    seedsBloomFilter: bfsd, peersBloomFilter: bfpe)
        #expect(m == .response(aa, expected))
        #expect(m.encoded() == wire)
    }

    @Test func emptyNodesAnswerAFindNodeAndEmptyValuesAGetPeers() throws {
        let f = bytes("d1:rd2:id20:mnopqrstuvwxyz1234565:nodes0:e1:t2:aa1:y1:re")
        #expect(try decode(f, asked: .findNode) == .response(aa, KRPCResponse(id: idM, nodes: [])))
        let g = bytes("d1:rd2:id20:mnopqrstuvwxyz1234565:token1:x6:valueslee1:t2:aa1:y1:re")
        #expect(try decode(g, asked: .getPeers) == .response(aa, KRPCResponse(id: idM, values: [], token: bytes("x"))))
    }

    @Test func unknownKeysAreIgnoredAtEveryLevel() throws {
        let wire = bytes("d1:ad5:extrali1ei2ee2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:q3:zzzd1:xi1eee")
        #expect(try decode(wire) == .query(aa, KRPCQuery(sender: idA, arguments: .ping)))
        let reply = bytes("d1:rd2:id20:mnopqrstuvwxyz1234565:nodes0:6:samplei3ee1:t2:aa1:y1:re")
        #expect(try decode(reply, asked: .ping) == .response(aa, KRPCResponse(id: idM, nodes: [])))
    }

    @Test func otherBEPErrorCodesSurvive() throws {
        let wire = bytes("d1:eli302e16:sequence too olde1:t2:aa1:y1:ee")
        let m = try decode(wire, asked: .ping)
        #expect(m == .error(aa, KRPCErrorCode(rawValue: 302), "sequence too old"))
        #expect(m.encoded() == wire)
    }

    @Test func encoderSkipsNodesOfTheWrongFamily() throws {
        let v4 = NodeInfo(id: idA, endpoint: Endpoint(ip: IPAddress("10.0.0.1")!, port: 1))
        let v6 = NodeInfo(id: idM, endpoint: Endpoint(ip: IPAddress("::2")!, port: 2))
        let m = KRPCMessage.response(aa, KRPCResponse(id: id0, nodes: [v4, v6], nodes6: [v4, v6]))
        let back = try decode(m.encoded(), asked: .findNode)
        #expect(back == .response(aa, KRPCResponse(id: id0, nodes: [v4], nodes6: [v6])))
    }

    @Test func flagsSpelledAsZeroDecodeAsFalseAndAreOmittedOnEncode() throws {
        let wire = bytes("d1:ad2:id20:abcdefghij012345678912:implied_porti0e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e4:seedi0e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe")
        let m = try decode(wire)
        #expect(m == .query(aa, KRPCQuery(sender: idA, arguments: .announcePeer(.init(infoHash: idM, port: 6881, token: bytes("x"))))))
        #expect(m.encoded() == bytes("d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe"))
    }

    @Test func impliedPortToleratesPortZero() throws {
        let wire = bytes("d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti0e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe")
        guard case .query(let q) = try decode(wire).body, case .announcePeer(let a) = q.arguments else {
            Issue.record("not an announce")
            return
        }
        #expect(a.impliedPort && a.port == 0)
    }

    @Test func datagramOfExactlyTheLimitIsAccepted() throws {
        let head = bytes("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:v")
        let tail = bytes("1:y1:qe")
        let fill = 1_500 - head.count - tail.count - 5  // "1464:" is 5 bytes
        let wire = head + bytes("\(fill):") + [UInt8](repeating: 0x41, count: fill) + tail
        #expect(wire.count == 1_500)
        #expect(try decode(wire).version?.count == fill)
    }
}
