import NIOCore
import PeerWire
import Testing
@testable import Swarm

private func peer(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, _ port: UInt16 = 6881) -> PEXPeer { PEXPeer(ip: [a, b, c, d], port: port) }

/// A peer that speaks PEX, on a torrent that is not private.
private func state(from ip: [UInt8] = [127, 0, 0, 9], listen: UInt16? = 7000) -> PEXState {
    var s = PEXState(peerIP: ip)
    s.allowed = true
    if let listen { s.peerListen = PEXPeer(ip: ip, port: listen) }
    var h = ExtensionHandshake()
    h.messages = ["ut_pex": 5]
    s.peerHandshake(h)
    return s
}

private func payload(_ added: [PEXPeer], dropped: [PEXPeer] = []) -> [UInt8] {
    PEXMessage(added: added.map { PEXEntry($0) }, dropped: dropped).encode()
}

@Suite struct PEXScopeTests {
    @Test func scopes() {
        #expect(PEXScope(ip: [127, 0, 0, 1]) == .loopback)
        #expect(PEXScope(ip: [169, 254, 3, 4]) == .linkLocal)
        #expect(PEXScope(ip: [10, 1, 2, 3]) == .private)
        #expect(PEXScope(ip: [172, 31, 0, 1]) == .private)
        #expect(PEXScope(ip: [172, 32, 0, 1]) == .global)
        #expect(PEXScope(ip: [192, 168, 0, 1]) == .private)
        #expect(PEXScope(ip: [100, 64, 0, 1]) == .private)
        #expect(PEXScope(ip: [8, 8, 8, 8]) == .global)
        for unusable: [UInt8] in [[0, 0, 0, 0], [224, 0, 0, 1], [239, 192, 152, 143], [255, 255, 255, 255], [240, 0, 0, 1]] {
            #expect(PEXScope(ip: unusable) == nil)
        }
        let zeros = [UInt8](repeating: 0, count: 16)
        #expect(PEXScope(ip: zeros) == nil)
        #expect(PEXScope(ip: Array(zeros.dropLast()) + [1]) == .loopback)
        #expect(PEXScope(ip: [0xfe, 0x80] + zeros.dropFirst(2)) == .linkLocal)
        #expect(PEXScope(ip: [0xfd, 0x12] + zeros.dropFirst(2)) == .private)
        #expect(PEXScope(ip: [0xff, 0x02] + zeros.dropFirst(2)) == nil)
        #expect(PEXScope(ip: [0x20, 0x01] + zeros.dropFirst(2)) == .global)
        #expect(PEXScope(ip: Array(zeros.prefix(10)) + [0xff, 0xff, 10, 0, 0, 1]) == .private)
        #expect(PEXScope(ip: [1, 2, 3]) == nil)
        #expect(PEXScope.unmapped(Array(zeros.prefix(10)) + [0xff, 0xff, 127, 0, 0, 1]) == [127, 0, 0, 1])
        #expect(PEXScope.unmapped(Array(zeros.dropLast()) + [1]).count == 16)
    }

    @Test func anAddressIsUsedOnlyWithPeersOfItsScopeOrNarrower() {
        let loopback: [UInt8] = [127, 0, 0, 1], lan: [UInt8] = [192, 168, 1, 2], internet: [UInt8] = [8, 8, 4, 4]
        // From a peer on this host: anything usable.
        #expect(PEXScope.usable([127, 0, 0, 2], port: 1, with: loopback))
        #expect(PEXScope.usable([10, 0, 0, 2], port: 1, with: loopback))
        #expect(PEXScope.usable([9, 9, 9, 9], port: 1, with: loopback))
        // From a LAN peer: not our loopback.
        #expect(!PEXScope.usable([127, 0, 0, 2], port: 1, with: lan))
        #expect(PEXScope.usable([10, 0, 0, 2], port: 1, with: lan))
        // From the internet: global addresses only.
        #expect(!PEXScope.usable([10, 0, 0, 2], port: 1, with: internet))
        #expect(!PEXScope.usable([127, 0, 0, 1], port: 1, with: internet))
        #expect(!PEXScope.usable([169, 254, 0, 1], port: 1, with: internet))
        #expect(PEXScope.usable([9, 9, 9, 9], port: 1, with: internet))
        // Never port 0 or an unusable address.
        #expect(!PEXScope.usable([9, 9, 9, 9], port: 0, with: loopback))
        #expect(!PEXScope.usable([224, 0, 0, 1], port: 1, with: loopback))
    }
}

@Suite struct PEXStateTests {
    // MARK: sending

    @Test func theFirstMessageListsTheConnectedPeersThenOnlyChangesAtMostOnceAMinute() {
        var s = state()
        let a = PEXEntry(peer(127, 0, 0, 2), flags: .reachable), b = PEXEntry(peer(127, 0, 0, 3), flags: .seed)
        #expect(s.message(connected: [a, b], now: 10) == PEXMessage(added: [a, b]))
        // Within the minute nothing goes out, whatever changed.
        let c = PEXEntry(peer(127, 0, 0, 4))
        #expect(s.message(connected: [b, c], now: 30) == nil)
        #expect(s.message(connected: [b, c], now: 69.9) == nil)
        // Then the difference: c added, a dropped.
        #expect(s.message(connected: [b, c], now: 70) == PEXMessage(added: [c], dropped: [a.peer]))
        // Nothing changed: nothing sent, and the next change goes out at once.
        #expect(s.message(connected: [b, c], now: 200) == nil)
        #expect(s.message(connected: [c], now: 201) == PEXMessage(dropped: [b.peer]))
    }

    @Test func listsAreBoundedToFiftyAndTheRestFollowsAMinuteLater() {
        var s = state()
        let many = (0..<120).map { PEXEntry(peer(127, 0, UInt8($0 / 200), UInt8(1 + $0 % 200))) }
        #expect(s.message(connected: many, now: 0) == PEXMessage(added: Array(many.prefix(50))))
        #expect(s.message(connected: many, now: 60) == PEXMessage(added: Array(many[50..<100])))
        #expect(s.message(connected: many, now: 120) == PEXMessage(added: Array(many[100...])))
        let gone = s.message(connected: [], now: 180)
        #expect(gone?.added.isEmpty == true && gone?.dropped.count == 50)
        #expect(s.message(connected: [], now: 240)?.dropped.count == 50)
        #expect(s.message(connected: [], now: 300)?.dropped.count == 20)
        #expect(s.message(connected: [], now: 360) == nil)
    }

    @Test func thePeerItselfAndAddressesOutsideItsScopeAreNotTold() {
        var s = state(from: [8, 8, 8, 8], listen: 7000)
        let connected = [PEXEntry(PEXPeer(ip: [8, 8, 8, 8], port: 7000)), PEXEntry(peer(10, 0, 0, 2)), PEXEntry(peer(127, 0, 0, 1)),
                         PEXEntry(peer(9, 9, 9, 9))]
        #expect(s.message(connected: connected, now: 0) == PEXMessage(added: [PEXEntry(peer(9, 9, 9, 9))]))
    }

    @Test func nothingIsSentToAPeerWithoutPEXOrForAPrivateOrUnknownTorrent() {
        let connected = [PEXEntry(peer(127, 0, 0, 2))]
        var silent = PEXState(peerIP: [127, 0, 0, 9])
        silent.allowed = true
        #expect(silent.message(connected: connected, now: 0) == nil)
        var off = state()
        var h = ExtensionHandshake()
        h.messages = ["ut_pex": 0]
        off.peerHandshake(h)
        #expect(off.message(connected: connected, now: 0) == nil)
        var privateTorrent = state()
        privateTorrent.allowed = false
        #expect(privateTorrent.message(connected: connected, now: 0) == nil)
        var unknown = state()
        unknown.allowed = nil
        #expect(unknown.message(connected: connected, now: 0) == nil)
    }

    // MARK: receiving

    @Test func learnsNewPeersOnce() {
        var s = state()
        let a = peer(127, 0, 0, 2), b = peer(127, 0, 0, 3)
        #expect(s.receive(payload([a, b]), now: 0) == .learned([PEXEntry(a), PEXEntry(b)], refused: 0))
        #expect(s.receive(payload([a, b, a]), now: 100) == .learned([], refused: 0))
    }

    @Test func flagsArePassedOn() {
        var s = state()
        let e = PEXEntry(peer(127, 0, 0, 2), flags: [.seed, .reachable])
        #expect(s.receive(PEXMessage(added: [e]).encode(), now: 0) == .learned([e], refused: 0))
    }

    @Test func ourselvesTheSenderAndConnectedPeersAreSkipped() {
        var s = state(from: [127, 0, 0, 9], listen: 7000)
        s.ours = [peer(127, 0, 0, 1, 6881)]
        _ = s.message(connected: [PEXEntry(peer(127, 0, 0, 5))], now: 0)
        let fresh = peer(127, 0, 0, 6)
        let got = s.receive(payload([peer(127, 0, 0, 1, 6881), PEXPeer(ip: [127, 0, 0, 9], port: 7000), peer(127, 0, 0, 5), fresh]), now: 0)
        #expect(got == .learned([PEXEntry(fresh)], refused: 0))
    }

    @Test func privateAndLoopbackAddressesFromAPublicSenderAreRefused() {
        var s = state(from: [203, 0, 113, 7])
        let got = s.receive(payload([peer(10, 0, 0, 1), peer(192, 168, 1, 1), peer(127, 0, 0, 1), peer(169, 254, 1, 1),
                                     peer(0, 0, 0, 0), peer(224, 0, 0, 1), peer(9, 9, 9, 9, 0), peer(9, 9, 9, 9)]), now: 0)
        #expect(got == .learned([PEXEntry(peer(9, 9, 9, 9))], refused: 7))
    }

    @Test func fiveThousandPeersYieldFiftyAndALifetimeCap() {
        var s = state()
        func batch(_ k: Int) -> [PEXPeer] { (0..<5000).map { peer(127, UInt8(k), UInt8($0 >> 8), UInt8(1 + $0 % 250)) } }
        guard case .learned(let first, let refused) = s.receive(payload(batch(1)), now: 0) else { Issue.record("not learned"); return }
        #expect(first.count == PEXState.maxPerMessage && refused == 4950)
        var total = first.count
        for k in 2...10 {
            if case .learned(let more, _) = s.receive(payload(batch(k)), now: Double(k) * 60) { total += more.count }
        }
        #expect(total == PEXState.maxLearned)
    }

    @Test func hostileMessagesClose() {
        var s = state()
        #expect(s.receive(Array("i5e".utf8), now: 0) == .close("ut_pex message is not a bencoded dictionary"))
        var t = state()
        #expect(t.receive(Array("d5:addedi1ee".utf8), now: 0) == .close("ut_pex message: added is a integer, not a string"))
        var u = state()
        #expect(u.receive(Array("d7:dropped5:abcdee".utf8), now: 0) == .close("ut_pex message: dropped is 5 bytes, not a multiple of 6"))
        var v = state()
        let huge = [UInt8](repeating: 0x64, count: PEXMessage.maxSize + 1)
        #expect(v.receive(huge, now: 0) == .close("ut_pex message of \(PEXMessage.maxSize + 1) bytes (limit \(PEXMessage.maxSize))"))
    }

    @Test func aFloodOfMessagesCloses() {
        var s = state()
        for i in 0..<PEXState.burst { #expect(s.receive(payload([]), now: Double(i)) == .learned([], refused: 0)) }
        #expect(s.receive(payload([]), now: 59) == .close("ut_pex messages more often than 3 a minute"))
        // Spread over minutes, the same count is fine.
        var calm = state()
        for i in 0..<10 { #expect(calm.receive(payload([]), now: Double(i) * 30) == .learned([], refused: 0)) }
    }

    @Test func nothingIsTakenForAPrivateOrUnknownTorrent() {
        var p = state()
        p.allowed = false
        #expect(p.receive(payload([peer(127, 0, 0, 2)]), now: 0) == .ignored)
        var u = state()
        u.allowed = nil
        #expect(u.receive(payload([peer(127, 0, 0, 2)]), now: 0) == .ignored)
    }
}

/// PEX inside the connection machine: what it advertises, sends and passes on.
@Suite struct PEXConnectionTests {
    let open: Fixture
    let closed: Fixture
    init() throws {
        open = try Fixture(files: ["index.html": content(1, 1000)])
        closed = try Fixture(files: ["index.html": content(1, 1000)], isPrivate: true)
    }

    private func facts(_ t: SeedTorrent, peerPort: UInt16 = 7000) -> HandshakeFacts {
        var r = Reserved()
        r.fast = true
        r.extensionProtocol = true
        return HandshakeFacts(handshake: Handshake(reserved: r, infoHash: t.shortHashes[0], peerID: Array("-XX0001-fakepeer0001".utf8)),
                              target: .torrent(t), ourPeerID: Array("-WS0010-ourselves000".utf8), host: "127.0.0.9",
                              peerAddress: [127, 0, 0, 9], fromSameHost: 0, maxPerHost: 8,
                              peerPort: peerPort, localAddress: [127, 0, 0, 1], listenPort: 6881)
    }

    private func ourHandshake(_ actions: [PeerConnection.Action]) throws -> ExtensionHandshake {
        for case .send(.extended(id: 0, payload: let payload)) in actions { return try ExtensionHandshake(decoding: Array(buffer: payload)) }
        throw CancellationError()
    }

    private func theirHandshake(pex: UInt8?, port: UInt16? = nil) -> PeerConnection.Event {
        var h = ExtensionHandshake()
        h.messages = pex.map { ["ut_pex": $0] } ?? [:]
        h.listenPort = port
        return .message(.extended(id: 0, payload: ByteBuffer(bytes: h.encode())), downloadComplete: false)
    }

    @Test func advertisedWithOurPortExceptForAPrivateTorrent() throws {
        var c = PeerConnection(outgoing: false)
        let h = try ourHandshake(c.handle(.handshake(facts(open.torrent)), now: 0))
        #expect(h.messages["ut_pex"] == PEXState.ourID && h.listenPort == 6881)
        var p = PeerConnection(outgoing: false)
        #expect(try ourHandshake(p.handle(.handshake(facts(closed.torrent)), now: 0)).messages["ut_pex"] == nil)
    }

    @Test func sendsTheTorrentsPeersAndPassesOnWhatItLearns() throws {
        var c = PeerConnection(outgoing: true)
        _ = c.handle(.handshake(facts(open.torrent)), now: 0)
        _ = c.handle(theirHandshake(pex: 4), now: 0)
        // We connected to it: it is named with the port we reached, as reachable.
        #expect(c.pexEntry == PEXEntry(PEXPeer(ip: [127, 0, 0, 9], port: 7000), flags: .reachable))
        let other = PEXEntry(PEXPeer(ip: [127, 0, 0, 2], port: 6000))
        let sent = c.handle(.pex(connected: [c.pexEntry!, other]), now: 1)
        #expect(sent == [.send(.extended(id: 4, payload: ByteBuffer(bytes: PEXMessage(added: [other]).encode())))])
        let learned = PEXEntry(PEXPeer(ip: [127, 0, 0, 3], port: 6001))
        let message = PeerMessage.extended(id: PEXState.ourID, payload: ByteBuffer(bytes: PEXMessage(added: [learned]).encode()))
        #expect(c.handle(.message(message, downloadComplete: false), now: 2) == [.learned([learned], refused: 0)])
        let bad = PeerMessage.extended(id: PEXState.ourID, payload: ByteBuffer(bytes: Array("xx".utf8)))
        #expect(c.handle(.message(bad, downloadComplete: false), now: 3) == [.close(.pex("ut_pex message is not a bencoded dictionary"))])
    }

    @Test func anIncomingPeerIsNamedOnlyOnceItsPortIsKnown() {
        var c = PeerConnection(outgoing: false)
        _ = c.handle(.handshake(facts(open.torrent, peerPort: 40000)), now: 0)
        _ = c.handle(theirHandshake(pex: 1), now: 0)
        #expect(c.pexEntry == nil)
        var d = PeerConnection(outgoing: false)
        _ = d.handle(.handshake(facts(open.torrent, peerPort: 40000)), now: 0)
        _ = d.handle(theirHandshake(pex: 1, port: 7001), now: 0)
        #expect(d.pexEntry == PEXEntry(PEXPeer(ip: [127, 0, 0, 9], port: 7001)))
    }

    @Test func aSeedIsFlaggedSo() {
        var f = facts(open.torrent)
        f.target = .download(DownloadFacts(v2Short: Array(open.metainfo.v2InfoHash!.bytes.prefix(20)), isPrivate: false))
        var c = PeerConnection(outgoing: true)
        _ = c.handle(.handshake(f), now: 0)
        #expect(c.pexEntry?.flags == .reachable)
        _ = c.handle(.message(.haveAll, downloadComplete: false), now: 0)
        #expect(c.pexEntry?.flags == [.reachable, .seed])
    }

    @Test func aMagnetDownloadOffersPEXButTakesNothingUntilItsMetadataSaysPublic() throws {
        var f = facts(open.torrent)
        f.target = .download(DownloadFacts(v2Short: Array(open.metainfo.v2InfoHash!.bytes.prefix(20))))
        var c = PeerConnection(outgoing: true)
        #expect(try ourHandshake(c.handle(.handshake(f), now: 0)).messages["ut_pex"] == PEXState.ourID)
        _ = c.handle(theirHandshake(pex: 1), now: 0)
        let learned = PEXEntry(PEXPeer(ip: [127, 0, 0, 3], port: 6001))
        let message = PeerMessage.extended(id: PEXState.ourID, payload: ByteBuffer(bytes: PEXMessage(added: [learned]).encode()))
        #expect(c.handle(.message(message, downloadComplete: false), now: 1) == [])
        #expect(c.handle(.pex(connected: [PEXEntry(PEXPeer(ip: [127, 0, 0, 2], port: 6000))]), now: 1) == [])
        _ = c.handle(.attach(open.torrent), now: 2)
        #expect(c.handle(.message(message, downloadComplete: false), now: 70) == [.learned([learned], refused: 0)])
    }

    @Test func aPrivateTorrentNeitherSendsNorTakes() {
        var c = PeerConnection(outgoing: true)
        _ = c.handle(.handshake(facts(closed.torrent)), now: 0)
        _ = c.handle(theirHandshake(pex: 1), now: 0)
        #expect(c.handle(.pex(connected: [PEXEntry(PEXPeer(ip: [127, 0, 0, 2], port: 6000))]), now: 1) == [])
        let message = PeerMessage.extended(id: PEXState.ourID, payload: ByteBuffer(bytes: PEXMessage(added: [PEXEntry(PEXPeer(ip: [127, 0, 0, 3], port: 1))]).encode()))
        #expect(c.handle(.message(message, downloadComplete: false), now: 2) == [])
        #expect(c.phase == .open)
    }
}
