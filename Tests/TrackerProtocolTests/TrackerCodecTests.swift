import Bencode
import Testing
@testable import TrackerProtocol

private func announce(event: Announce.Event = .started) -> Announce {
    var a = Announce(infoHash: Array(0..<20), peerID: Array("-WS0100-abcdefghijkl".utf8), port: 6881)
    a.uploaded = 1
    a.downloaded = 2
    a.left = 3
    a.event = event
    a.key = 0xBEEF
    return a
}

@Suite struct HTTPTrackerTests {
    @Test func theURLCarriesEveryFieldPercentEncoded() {
        let url = HTTPTracker.url("http://127.0.0.1:6969/announce", announce())
        #expect(url == "http://127.0.0.1:6969/announce?info_hash=%00%01%02%03%04%05%06%07%08%09%0A%0B%0C%0D%0E%0F%10%11%12%13"
            + "&peer_id=-WS0100-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3&compact=1&numwant=50&key=beef&event=started")
        #expect(HTTPTracker.url("http://t/a?passkey=x", announce(event: .none)).hasPrefix("http://t/a?passkey=x&info_hash="))
        #expect(!HTTPTracker.url("http://t/a", announce(event: .none)).contains("event="))
    }

    @Test func compactAndDictionaryAndIPv6PeersAreRead() throws {
        var d = BDictionary([("interval", .integer(1800)), ("min interval", .integer(30)), ("complete", .integer(4)), ("incomplete", .integer(1)),
                             ("peers", .bytes([127, 0, 0, 1, 0x1A, 0xE1, 10, 0, 0, 2, 0, 80]))])
        d["peers6"] = .bytes([UInt8](repeating: 0, count: 15) + [1, 0x1A, 0xE1])
        let r = try HTTPTracker.response(BValue.dictionary(d).encoded())
        #expect(r.interval == 1800 && r.minInterval == 60 && r.seeders == 4 && r.leechers == 1)
        #expect(r.peers.map(\.description) == ["127.0.0.1:6881", "10.0.0.2:80", "[::1]:6881"])

        let list = BDictionary([("interval", .integer(60)), ("peers", .list([
            .dictionary(BDictionary([("ip", .string("192.168.1.9")), ("peer id", .bytes([UInt8](repeating: 1, count: 20))), ("port", .integer(51413))])),
            .dictionary(BDictionary([("ip", .string("2001:db8::7")), ("port", .integer(6881))])),
            .dictionary(BDictionary([("ip", .string("not an address")), ("port", .integer(1))])),
            .dictionary(BDictionary([("ip", .string("10.0.0.1")), ("port", .integer(70_000))])),
        ]))])
        #expect(try HTTPTracker.response(BValue.dictionary(list).encoded()).peers.map(\.description) == ["192.168.1.9:51413", "[2001:db8::7]:6881"])
    }

    @Test func aFailureReasonIsTheTrackersRefusal() {
        let body = BValue.dictionary(BDictionary([("failure reason", .string("unregistered torrent\n"))])).encoded()
        #expect(throws: TrackerError.failure("unregistered torrent?")) { try HTTPTracker.response(body) }
    }

    @Test(arguments: [
        Array("<html>502 Bad Gateway</html>".utf8),
        Array("le".utf8),
        Array("d5:peers0:e".utf8),  // no interval
        Array("d8:intervali60e5:peers5:abcdee".utf8),  // a partial compact peer
        Array("d8:intervali60e5:peersi1ee".utf8),
        [UInt8](repeating: 0x64, count: TrackerLimits.maxResponseSize + 1),
    ])
    func whatIsNotATrackerResponseIsRefused(_ body: [UInt8]) {
        #expect(throws: TrackerError.self) { try HTTPTracker.response(body) }
    }

    @Test func intervalsAreClampedAndPeersBounded() throws {
        let many = (0..<2_000).flatMap { i -> [UInt8] in [10, 0, UInt8(i >> 8), UInt8(i & 0xFF), 0x1A, 0xE1] }
        let body = BValue.dictionary(BDictionary([("interval", .integer(1)), ("peers", .bytes(many))])).encoded()
        let r = try HTTPTracker.response(body)
        #expect(r.interval == 60 && r.peers.count == TrackerLimits.maxPeers)
        let lazy = BValue.dictionary(BDictionary([("interval", .integer(10_000_000))])).encoded()
        #expect(try HTTPTracker.response(lazy).interval == 3 * 60 * 60)
    }
}

@Suite struct UDPTrackerTests {
    @Test func requestsHaveBEP15sLayout() {
        let connect = UDPTracker.connectRequest(transaction: 0x0102_0304)
        #expect(connect == [0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 1, 2, 3, 4])
        let a = UDPTracker.announceRequest(connection: 0x1122_3344_5566_7788, transaction: 9, announce())
        #expect(a.count == 98)
        #expect(Array(a[0..<8]) == [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88])
        #expect(Array(a[8..<16]) == [0, 0, 0, 1, 0, 0, 0, 9])
        #expect(Array(a[16..<36]) == Array(0..<20))
        #expect(Array(a[56..<64]) == [0, 0, 0, 0, 0, 0, 0, 2])  // downloaded
        #expect(Array(a[64..<72]) == [0, 0, 0, 0, 0, 0, 0, 3])  // left
        #expect(Array(a[72..<80]) == [0, 0, 0, 0, 0, 0, 0, 1])  // uploaded
        #expect(Array(a[80..<84]) == [0, 0, 0, 2])  // started
        #expect(Array(a[88..<92]) == [0, 0, 0xBE, 0xEF])
        #expect(Array(a[96..<98]) == [0x1A, 0xE1])
    }

    @Test func repliesAreRead() throws {
        #expect(try UDPTracker.reply([0, 0, 0, 0, 0, 0, 0, 7] + [1, 2, 3, 4, 5, 6, 7, 8], transaction: 7, ipv6: false)
            == .connected(connection: 0x0102_0304_0506_0708))
        let announced: [UInt8] = [0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 7, 8, 0, 0, 0, 2, 0, 0, 0, 5] + [127, 0, 0, 1, 0x1A, 0xE1]
        guard case .announced(let r) = try UDPTracker.reply(announced, transaction: 7, ipv6: false) else { Issue.record("not announced"); return }
        #expect(r.interval == 1800 && r.leechers == 2 && r.seeders == 5 && r.peers.map(\.description) == ["127.0.0.1:6881"])
        let v6: [UInt8] = [0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 7, 8, 0, 0, 0, 0, 0, 0, 0, 1] + [UInt8](repeating: 0, count: 15) + [1, 0, 80]
        guard case .announced(let r6) = try UDPTracker.reply(v6, transaction: 7, ipv6: true) else { Issue.record("not announced"); return }
        #expect(r6.peers.map(\.description) == ["[::1]:80"])
    }

    @Test func errorsAndStrangersAreRefused() {
        #expect(throws: TrackerError.failure("no such torrent")) {
            try UDPTracker.reply([0, 0, 0, 3, 0, 0, 0, 7] + Array("no such torrent".utf8), transaction: 7, ipv6: false)
        }
        #expect(throws: TrackerError.self) { try UDPTracker.reply([0, 0, 0, 0, 0, 0, 0, 8] + [UInt8](repeating: 0, count: 8), transaction: 7, ipv6: false) }
        #expect(throws: TrackerError.self) { try UDPTracker.reply([0, 0, 0, 0, 0, 0, 0, 7], transaction: 7, ipv6: false) }
        #expect(throws: TrackerError.self) { try UDPTracker.reply([0, 0, 0, 9, 0, 0, 0, 7], transaction: 7, ipv6: false) }
    }
}

@Suite struct TrackerPeerTests {
    @Test(arguments: [
        ("::1", "::1"), ("2001:db8::7", "2001:db8::7"), ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("fe80::", "fe80::"), ("::ffff:10.0.0.1", "::ffff:10.0.0.1"), ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
    ])
    func ipv6AddressesRoundTripInTheirShortForm(_ text: String, _ expected: String) throws {
        if text.hasPrefix("::ffff:") {
            let ip = [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF, 10, 0, 0, 1]
            #expect(TrackerPeer(ip: ip, port: 1)?.host == expected)
            return
        }
        let ip = try #require(HTTPTracker.parseIP(text))
        #expect(TrackerPeer(ip: ip, port: 1)?.host == expected)
    }

    @Test(arguments: ["1.2.3", "1.2.3.256", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "g::1", ""])
    func malformedAddressesAreNotPeers(_ text: String) {
        #expect(HTTPTracker.parseIP(text) == nil)
    }
}
