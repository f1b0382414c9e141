import Bencode
import Testing
@testable import TrackerProtocol

/// The tracker side: announce queries read, answers written, and the peer table's rules.

private let hash = [UInt8](repeating: 0xAB, count: 20)
private let hashQuery = String(repeating: "%AB", count: 20)
private let peerID = "-LT2080-abcdefghijkl"

private func query(_ extra: String = "", left: String = "0", port: String = "6881") -> String {
    "info_hash=\(hashQuery)&peer_id=\(peerID)&port=\(port)&uploaded=0&downloaded=0&left=\(left)&compact=1" + extra
}

private func refusal(_ q: String) -> String? {
    do {
        _ = try AnnounceRequest.parse(q)
        return nil
    } catch {
        return error.reason
    }
}

/// A seeded generator (SplitMix64), so a random choice is the same on every run.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct AnnounceRequestTests {
    @Test func whatLibtorrentSendsIsRead() throws {
        let q = "info_hash=%12%34Vx%9A%BC%DE%F0%12%34Vx%9A%BC%DE%F0%12%34Vx&peer_id=-LT2080-%1B%2Bx%7E.%FF_%00abcd&port=6881"
            + "&uploaded=10&downloaded=20&left=30&corrupt=0&key=5AD2C9B1&event=started&numwant=200&compact=1&no_peer_id=1&supportcrypto=1&redundant=0"
        let r = try AnnounceRequest.parse(q)
        #expect(r.announce.infoHash == [0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0, 0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0, 0x12, 0x34, 0x56, 0x78])
        #expect(r.announce.peerID == Array("-LT2080-".utf8) + [0x1B, 0x2B, 0x78, 0x7E, 0x2E, 0xFF, 0x5F, 0x00] + Array("abcd".utf8))
        #expect(r.announce.port == 6881 && r.announce.uploaded == 10 && r.announce.downloaded == 20 && r.announce.left == 30)
        #expect(r.announce.event == .started && r.announce.key == 0x5AD2_C9B1 && r.compact)
        #expect(r.announce.numWant == TrackerServerLimits.maxNumWant, "numwant=200 is capped")
    }

    @Test func theClientSideURLReadsBack() throws {
        var a = Announce(infoHash: Array(0..<20), peerID: Array(100..<120), port: 51413)
        a.left = 5
        a.uploaded = 7
        a.event = .completed
        a.numWant = 12
        a.key = 0xBEEF
        let url = HTTPTracker.url("http://127.0.0.1/announce", a)
        let r = try AnnounceRequest.parse(String(url.split(separator: "?")[1]))
        #expect(r.announce == a && r.compact)
    }

    @Test func defaultsAndOptionalFields() throws {
        let r = try AnnounceRequest.parse("info_hash=\(hashQuery)&peer_id=\(peerID)&port=1&left=0")
        #expect(r.compact && r.announce.event == .none && r.announce.numWant == TrackerServerLimits.defaultNumWant)
        #expect(r.announce.uploaded == 0 && r.announce.downloaded == 0)
        #expect(try AnnounceRequest.parse(query("&numwant=-1")).announce.numWant == TrackerServerLimits.defaultNumWant)
        #expect(try AnnounceRequest.parse(query("&numwant=0")).announce.numWant == 0)
        #expect(try AnnounceRequest.parse(query("&event=paused")).announce.event == .none, "BEP 21: a partial seed stays")
        #expect(try !AnnounceRequest.parse(query().replacing("compact=1", with: "compact=0")).compact)
        // ip= is not believed (the address is the connection's); unknown parameters are ignored.
        #expect(try AnnounceRequest.parse(query("&ip=192.0.2.7&ipv6=2001:db8::1&trackerid=x")).announce.port == 6881)
        #expect(try AnnounceRequest.parse(query("&&&")).announce.port == 6881, "empty parameters are skipped")
    }

    @Test func everyMissingOrMalformedFieldIsRefusedWithItsName() {
        #expect(refusal("") == "no info_hash")
        #expect(refusal("peer_id=\(peerID)&port=1&left=0") == "no info_hash")
        #expect(refusal("info_hash=%AB%CD&peer_id=\(peerID)&port=1&left=0") == "info_hash is 2 bytes, not 20")
        #expect(refusal("info_hash=\(hashQuery)%00&peer_id=\(peerID)&port=1&left=0") == "info_hash is 21 bytes, not 20")
        #expect(refusal("info_hash=\(hashQuery)&port=1&left=0") == "no peer_id")
        #expect(refusal("info_hash=\(hashQuery)&peer_id=short&port=1&left=0") == "peer_id is 5 bytes, not 20")
        #expect(refusal("info_hash=\(hashQuery)&peer_id=\(peerID)&left=0") == "no port")
        #expect(refusal("info_hash=\(hashQuery)&peer_id=\(peerID)&port=1") == "no left")
        for port in ["0", "65536", "-1", "x", "99999999999999999999", ""] {
            #expect(refusal(query(port: port)) == "port is not a number in 1…65535", "port=\(port)")
        }
        for left in ["-5", "1e3", "0x10", "9999999999999999999", " 1"] {
            #expect(refusal(query(left: left)) == "left is not a byte count", "left=\(left)")
        }
        #expect(refusal(query("&uploaded=-1").replacing("uploaded=0&", with: "")) == "uploaded is not a byte count")
        #expect(refusal(query("&event=exploded")) == "unknown event 'exploded'")
        #expect(refusal(query("&numwant=lots")) == "numwant is not a number")
        #expect(refusal(query().replacing("compact=1", with: "compact=2")) == "compact is neither 0 nor 1")
    }

    @Test func badEncodingRepeatsAndSizesAreRefused() {
        #expect(refusal(query().replacing("info_hash=%AB", with: "info_hash=%G1")) == "info_hash is not percent-encoded correctly")
        #expect(refusal(query("&key=%4")) == "key is not percent-encoded correctly")
        #expect(refusal(query("&port=6882")) == "port is given more than once")
        #expect(refusal(query("&info_hash=\(hashQuery)")) == "info_hash is given more than once")
        #expect(refusal(query("&%ZZ=1")) == "a malformed parameter name")
        #expect(refusal(query("&" + String(repeating: "n", count: 33) + "=1")) == "a malformed parameter name")
        let many = query(String(repeating: "&x=1", count: TrackerServerLimits.maxParameters))
        #expect(refusal(many) == "more than \(TrackerServerLimits.maxParameters) query parameters")
        let long = query("&pad=" + String(repeating: "a", count: TrackerServerLimits.maxQueryLength))
        #expect(refusal(long)?.hasPrefix("the query is ") == true)
        // Exactly at the bounds: read.
        let exactly = query(String(repeating: "&x=1", count: TrackerServerLimits.maxParameters - 7))
        #expect(refusal(exactly) == nil)
    }

    /// Found by the `tracker` fuzz target: an unknown event quoted as it came, newline and NULs
    /// included, made a refusal of several lines.
    @Test func aRefusalQuotingWhatCameIsOneLine() {
        #expect(refusal(query("&event=st%0A%00%00arted")) == "unknown event 'st\\x0A\\x00\\x00arted'")
        #expect(refusal(query("&event=" + String(repeating: "x", count: 40))) == "unknown event '\(String(repeating: "x", count: 16))…'")
        #expect(AnnounceRefusal("a\nb\rc\u{0}d").reason == "a b c d")
    }

    @Test func aRefusalIsOneBencodedLine() throws {
        let body = HTTPTracker.failureBody("unknown event 'a\nb'")
        #expect(throws: TrackerError.failure("unknown event 'a?b'")) { try HTTPTracker.response(body) }
    }
}

@Suite struct AnnounceAnswerTests {
    private func peer(_ ip: [UInt8], _ port: UInt16) -> TrackerPeer { TrackerPeer(ip: ip, port: port)! }

    @Test func compactAnswersReadBackAsTheyWereWritten() throws {
        let v6 = [UInt8](repeating: 0, count: 15) + [1]
        let r = AnnounceResponse(interval: 1800, minInterval: 60, seeders: 2, leechers: 1,
                                 peers: [peer([127, 0, 0, 1], 6881), peer(v6, 51413), peer([10, 0, 0, 2], 80)], warning: nil, trackerID: nil)
        let body = HTTPTracker.body(r, compact: true)
        let d = try BencodeDecoder.decode(body).dictionary!
        #expect(d["peers"]?.bytes == [127, 0, 0, 1, 0x1A, 0xE1, 10, 0, 0, 2, 0, 80])
        #expect(d["peers6"]?.bytes == v6 + [0xC8, 0xD5])
        #expect(d["complete"]?.integer == 2 && d["incomplete"]?.integer == 1 && d["interval"]?.integer == 1800 && d["min interval"]?.integer == 60)
        let back = try HTTPTracker.response(body)
        #expect(Set(back.peers) == Set(r.peers) && back.seeders == 2 && back.leechers == 1)
        // No IPv6 peers: no peers6 key.
        let v4only = AnnounceResponse(interval: 1800, minInterval: nil, seeders: 0, leechers: 0, peers: [], warning: nil, trackerID: nil)
        let e = try BencodeDecoder.decode(HTTPTracker.body(v4only, compact: true)).dictionary!
        #expect(e["peers"]?.bytes == [] && e["peers6"] == nil)
    }

    @Test func dictionaryAnswersCarryBothFamilies() throws {
        let v6: [UInt8] = [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [7]
        let r = AnnounceResponse(interval: 900, minInterval: nil, seeders: 1, leechers: 0,
                                 peers: [peer([192, 168, 1, 9], 51413), peer(v6, 6881)], warning: nil, trackerID: nil)
        let body = HTTPTracker.body(r, compact: false)
        let list = try BencodeDecoder.decode(body).dictionary!["peers"]!.list!
        #expect(list.map { $0.dictionary!["ip"]!.utf8String! } == ["192.168.1.9", "2001:db8::7"])
        #expect(try HTTPTracker.response(body).peers.map(\.description) == ["192.168.1.9:51413", "[2001:db8::7]:6881"])
    }
}

@Suite struct TrackerTableTests {
    private let local: [UInt8] = [127, 0, 0, 1]

    private func announce(port: UInt16, left: Int64 = 100, event: Announce.Event = .none, numWant: Int = 50, hash: [UInt8] = hash) -> Announce {
        var a = Announce(infoHash: hash, peerID: Array(repeating: UInt8(port & 0xFF), count: 20), port: port)
        a.left = left
        a.event = event
        a.numWant = numWant
        return a
    }

    private func ports(_ r: AnnounceResponse) -> Set<UInt16> { Set(r.peers.map(\.port)) }

    @Test func peersFindEachOtherButNeverThemselves() {
        var t = TrackerTable()
        var rng = SeededRandom(state: 1)
        let first = t.announce(announce(port: 1000, left: 0, event: .started), from: local, now: 0, using: &rng)
        #expect(first.peers.isEmpty && first.seeders == 1 && first.leechers == 0)
        #expect(first.interval == 1800 && first.minInterval == 60)
        let second = t.announce(announce(port: 2000, event: .started), from: local, now: 1, using: &rng)
        #expect(second.peers.map(\.description) == ["127.0.0.1:1000"])
        #expect(second.seeders == 1 && second.leechers == 1)
        // The same address and port announcing again is the same entry.
        let again = t.announce(announce(port: 2000), from: local, now: 2, using: &rng)
        #expect(again.peers.map(\.description) == ["127.0.0.1:1000"] && t.count == 2)
        // Another address with the same port is another peer.
        let other = t.announce(announce(port: 2000), from: [10, 0, 0, 2], now: 3, using: &rng)
        #expect(ports(other) == [1000, 2000] && t.count == 3)
    }

    @Test func seedersAreNotSentToSeeders() {
        var t = TrackerTable()
        var rng = SeededRandom(state: 2)
        _ = t.announce(announce(port: 1, left: 0), from: local, now: 0, using: &rng)
        _ = t.announce(announce(port: 2, left: 5), from: local, now: 0, using: &rng)
        let seeder = t.announce(announce(port: 3, left: 0), from: local, now: 0, using: &rng)
        #expect(ports(seeder) == [2])
        let leecher = t.announce(announce(port: 4, left: 5), from: local, now: 0, using: &rng)
        #expect(ports(leecher) == [1, 2, 3])
        // A leecher that completes counts as a seeder from then on.
        let done = t.announce(announce(port: 2, left: 0, event: .completed), from: local, now: 1, using: &rng)
        #expect(ports(done) == [4] && done.seeders == 3 && done.leechers == 1)
    }

    @Test func stoppedRemovesAndGetsNoPeers() {
        var t = TrackerTable()
        var rng = SeededRandom(state: 3)
        _ = t.announce(announce(port: 1), from: local, now: 0, using: &rng)
        _ = t.announce(announce(port: 2), from: local, now: 0, using: &rng)
        let bye = t.announce(announce(port: 2, event: .stopped), from: local, now: 1, using: &rng)
        #expect(bye.peers.isEmpty && t.count == 1 && bye.leechers == 1)
        #expect(t.announce(announce(port: 3), from: local, now: 1, using: &rng).peers.map(\.port) == [1])
        // Stopping a peer never seen changes nothing.
        _ = t.announce(announce(port: 9, event: .stopped), from: local, now: 1, using: &rng)
        #expect(t.count == 2)
    }

    @Test func entriesExpireAfterTwiceTheInterval() {
        var t = TrackerTable()
        var rng = SeededRandom(state: 4)
        _ = t.announce(announce(port: 1), from: local, now: 0, using: &rng)
        _ = t.announce(announce(port: 2), from: local, now: 1000, using: &rng)
        #expect(t.announce(announce(port: 3), from: local, now: 3599, using: &rng).peers.count == 2, "not yet 3,600 s")
        // At 3,601 s the first is gone (its last announce was 3,600 s ago); the second stays.
        let later = t.announce(announce(port: 3), from: local, now: 3601, using: &rng)
        #expect(ports(later) == [2] && later.leechers == 2)
        // A swarm whose every entry expired is forgotten.
        t.sweep(now: 100_000, force: true)
        #expect(t.count == 0 && t.counts(hash) == (0, 0))
    }

    @Test func answersHoldAtMostNumwantPeersChosenFairly() {
        var t = TrackerTable()
        var rng = SeededRandom(state: 5)
        for p in 1...200 { _ = t.announce(announce(port: UInt16(p)), from: [10, 0, UInt8(p / 10), UInt8(p % 10)], now: 0, using: &rng) }
        #expect(t.count == 200)
        #expect(t.announce(announce(port: 5000, numWant: 10), from: local, now: 0, using: &rng).peers.count == 10)
        #expect(t.announce(announce(port: 5000, numWant: 0), from: local, now: 0, using: &rng).peers.isEmpty)
        let capped = t.announce(announce(port: 5000, numWant: 10_000), from: local, now: 0, using: &rng)
        #expect(capped.peers.count == TrackerServerLimits.maxNumWant && Set(capped.peers).count == capped.peers.count)
        // Over many answers every peer is sent about as often (each of 200 in 50-of-200 answers:
        // expected 1,000 times in 4,000 answers; a fair choice stays well within ±25 %).
        var seen: [TrackerPeer: Int] = [:]
        for _ in 0..<4_000 {
            for p in t.announce(announce(port: 5000), from: local, now: 0, using: &rng).peers { seen[p, default: 0] += 1 }
        }
        #expect(seen.count == 200)
        #expect(seen.values.allSatisfy { (750...1250).contains($0) }, "min \(seen.values.min()!) max \(seen.values.max()!)")
    }

    @Test func oneAddressHoldsAFewEntriesOfATorrent() {
        var limits = TrackerTable.Limits()
        limits.peersPerAddress = 4
        var t = TrackerTable(limits: limits)
        var rng = SeededRandom(state: 6)
        _ = t.announce(announce(port: 1), from: [10, 0, 0, 9], now: 0, using: &rng)
        // (Within one lifetime: nothing expires here.)
        for p in 100..<10_100 { _ = t.announce(announce(port: UInt16(p)), from: local, now: Double(p - 100) / 10, using: &rng) }
        #expect(t.count == 5, "4 of the flooding address, and the other peer")
        let r = t.announce(announce(port: 7), from: [10, 0, 0, 8], now: 1_000, using: &rng)
        #expect(Set(r.peers.map(\.description)) == ["10.0.0.9:1", "127.0.0.1:10096", "127.0.0.1:10097", "127.0.0.1:10098", "127.0.0.1:10099"],
                "the newest four of the flood are kept")
        // An IPv6 /64 is one address.
        let net: [UInt8] = [0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 1]
        for i in 0..<10 { _ = t.announce(announce(port: 9), from: net + [0, 0, 0, 0, 0, 0, 0, UInt8(i)], now: 1_000, using: &rng) }
        #expect(t.count == 6 + 4)
    }

    @Test func aTorrentHoldsAtMostItsLimitOldestDroppedFirst() {
        var limits = TrackerTable.Limits()
        limits.peersPerTorrent = 10
        var t = TrackerTable(limits: limits)
        var rng = SeededRandom(state: 7)
        for i in 0..<25 { _ = t.announce(announce(port: 1), from: [10, 1, 0, UInt8(i)], now: Double(i), using: &rng) }
        #expect(t.count == 10)
        let r = t.announce(announce(port: 1, numWant: 50), from: [10, 2, 0, 0], now: 30, using: &rng)
        #expect(Set(r.peers.map { $0.ip[3] }) == Set(16..<25), "the oldest of the 10 made room for the asker")
    }

    @Test func theWholeTableIsBounded() {
        var limits = TrackerTable.Limits()
        limits.totalPeers = 30
        limits.peersPerTorrent = 20
        var t = TrackerTable(limits: limits)
        var rng = SeededRandom(state: 8)
        let a = [UInt8](repeating: 1, count: 20), b = [UInt8](repeating: 2, count: 20), c = [UInt8](repeating: 3, count: 20)
        for i in 0..<20 { _ = t.announce(announce(port: 1, hash: a), from: [10, 0, 0, UInt8(i)], now: Double(i), using: &rng) }
        for i in 0..<20 { _ = t.announce(announce(port: 1, hash: b), from: [10, 0, 1, UInt8(i)], now: Double(i), using: &rng) }
        #expect(t.count == 30 && t.counts(a).leechers == 20 && t.counts(b).leechers == 10)
        // Full: a torrent with no entry is answered but not kept.
        let r = t.announce(announce(port: 1, hash: c), from: [10, 0, 2, 0], now: 50, using: &rng)
        #expect(r.peers.isEmpty && r.leechers == 0 && t.count == 30 && t.counts(c) == (0, 0))
    }

    @Test func theTrackersOwnHostComesFirstAndOnlyOnce() {
        var t = TrackerTable()
        var rng = SeededRandom(state: 9)
        let own = TrackerTable.Extra(peer: TrackerPeer(ip: local, port: 7000)!, seeder: true)
        for p in 1...80 { _ = t.announce(announce(port: UInt16(p)), from: [10, 0, 0, UInt8(p)], now: 0, using: &rng) }
        let r = t.announce(announce(port: 5000), from: [10, 9, 9, 9], now: 0, extra: own, using: &rng)
        #expect(r.peers.first == own.peer && r.peers.count == 50 && r.seeders == 1 && r.leechers == 81)
        #expect(t.announce(announce(port: 5000, numWant: 1), from: [10, 9, 9, 9], now: 0, extra: own, using: &rng).peers == [own.peer])
        // The host's own announce (its own tracker client): never sent itself, counted once.
        let selfAnnounce = t.announce(announce(port: 7000, left: 0), from: local, now: 0, extra: own, using: &rng)
        #expect(!selfAnnounce.peers.contains(own.peer) && selfAnnounce.seeders == 1)
        let afterwards = t.announce(announce(port: 5001), from: [10, 9, 9, 9], now: 0, extra: own, using: &rng)
        #expect(afterwards.peers.filter { $0 == own.peer }.count == 1 && afterwards.seeders == 1)
        // A seeder asking is not sent the host when the host seeds; a leecher host is sent.
        #expect(!t.announce(announce(port: 5002, left: 0), from: [10, 9, 9, 9], now: 0, extra: own, using: &rng).peers.contains(own.peer))
        let leeching = TrackerTable.Extra(peer: TrackerPeer(ip: [10, 7, 7, 7], port: 7000)!, seeder: false)
        #expect(t.announce(announce(port: 5003, left: 0), from: [10, 9, 9, 9], now: 0, extra: leeching, using: &rng).peers.first == leeching.peer)
    }

    @Test func theSameRandomSourceMakesTheSameChoice() {
        func run() -> [TrackerPeer] {
            var t = TrackerTable()
            var rng = SeededRandom(state: 10)
            for p in 1...100 { _ = t.announce(announce(port: UInt16(p)), from: local, now: 0, using: &rng) }
            return t.announce(announce(port: 999, numWant: 5), from: [10, 0, 0, 1], now: 0, using: &rng).peers
        }
        #expect(run() == run())
    }
}
