import NIOCore
import Testing
import PeerWire
@testable import Swarm

/// The per-connection machine, driven by hand: no sockets, the clock a number.
@Suite struct Connections {
    let fixture: Fixture
    init() throws { fixture = try Fixture(files: ["index.html": content(1, 40_000), "a.css": content(2, 100)]) }

    var v2Short: [UInt8] { Array(fixture.metainfo.v2InfoHash!.bytes.prefix(20)) }
    var v1: [UInt8] { fixture.metainfo.v1InfoHash!.bytes }

    private func facts(_ hash: [UInt8], _ target: HandshakeTarget, upgrade: Bool = false, fast: Bool = true,
                       fromSameHost: Int = 0) -> HandshakeFacts {
        var r = Reserved()
        r.fast = fast
        r.extensionProtocol = true
        r.v2Upgrade = upgrade
        return HandshakeFacts(handshake: Handshake(reserved: r, infoHash: hash, peerID: Array("-XX0001-fakepeer0001".utf8)),
                              target: target, ourPeerID: Array("-WS0010-ourselves000".utf8), host: "10.0.0.1",
                              peerAddress: [10, 0, 0, 1], fromSameHost: fromSameHost, maxPerHost: 8)
    }

    private func seeding(_ c: inout PeerConnection) {
        _ = c.handle(.handshake(facts(v2Short, .torrent(fixture.torrent))), now: 0)
    }

    @Test func anUnknownHashIsClosed() {
        var c = PeerConnection(outgoing: false)
        #expect(c.handle(.handshake(facts(v2Short, .unknown)), now: 0) == [.close(.unknownInfoHash)])
        #expect(c.phase == .closed)
        #expect(c.handle(.message(.interested, downloadComplete: false), now: 1) == [])
        #expect(c.handle(.socketClosed, now: 2) == [.left(served: false, downloading: false, reason: .unknownInfoHash)])
    }

    @Test func aHybridReachedByItsV1HashWithTheUpgradeBitIsAnsweredWithV2() {
        var upgrading = PeerConnection(outgoing: false)
        let actions = upgrading.handle(.handshake(facts(v1, .torrent(fixture.torrent), upgrade: true)), now: 0)
        #expect(Array(actions.prefix(4)) == [.sendHandshake(infoHash: v2Short), .connected(name: fixture.metainfo.name, v2: true),
                                            .serving, .send(.haveAll)])
        #expect(upgrading.isV2)
        var plain = PeerConnection(outgoing: false)
        let first = plain.handle(.handshake(facts(v1, .torrent(fixture.torrent))), now: 0)
        #expect(first.first == .sendHandshake(infoHash: v1))
        #expect(!plain.isV2)
        // We opened it: our handshake went first, theirs is not answered.
        var outgoing = PeerConnection(outgoing: true)
        #expect(outgoing.handle(.handshake(facts(v2Short, .torrent(fixture.torrent))), now: 0).first == .connected(name: fixture.metainfo.name, v2: true))
    }

    @Test func ourselvesBannedHostsAndCrowdedAddressesAreClosedAtTheHandshake() {
        var me = PeerConnection(outgoing: false)
        var f = facts(v2Short, .torrent(fixture.torrent))
        f.handshake.peerID = f.ourPeerID
        #expect(me.handle(.handshake(f), now: 0) == [.close(.connectedToOurselves)])
        var banned = PeerConnection(outgoing: false)
        #expect(banned.handle(.handshake(facts(v2Short, .download(DownloadFacts(banned: .metadataHash)))), now: 0) == [.close(.banned(.metadataHash))])
        var crowded = PeerConnection(outgoing: false)
        #expect(crowded.handle(.handshake(facts(v2Short, .torrent(fixture.torrent), fromSameHost: 8)), now: 0)
                == [.close(.tooManyFromAddress("10.0.0.1"))])
        #expect(CloseReason.tooManyFromAddress("10.0.0.1").description == "too many connections from 10.0.0.1")
    }

    @Test func aSilentHandshakeTimesOutButAnOpenConnectionDoesNot() {
        var silent = PeerConnection(outgoing: false)
        #expect(silent.handle(.handshakeTimeout, now: 10) == [.close(.noHandshake)])
        var open = PeerConnection(outgoing: false)
        seeding(&open)
        #expect(open.handle(.handshakeTimeout, now: 10) == [])
        #expect(open.handle(.tick, now: PeerSession.idleTimeout + 1) == [.close(.idle(seconds: 180))])
    }

    @Test func aDownloadsConnectionHandsItsMessagesToTheDownload() {
        var c = PeerConnection(outgoing: false)
        let opening = c.handle(.handshake(facts(v2Short, .download(DownloadFacts(v2Short: v2Short)))), now: 0)
        #expect(Array(opening.prefix(4)) == [.sendHandshake(infoHash: v2Short), .connected(name: "(fetching metadata)", v2: true),
                                            .joinDownload, .send(.haveNone)])
        let block = PeerMessage.piece(piece: 0, begin: 0, block: ByteBuffer(bytes: [1, 2, 3]))
        #expect(c.handle(.message(block, downloadComplete: false), now: 1) == [.toDownload(block)])
        #expect(c.handle(.message(.unchoke, downloadComplete: false), now: 1) == [.toDownload(.unchoke)])
        #expect(c.handle(.message(.haveAll, downloadComplete: false), now: 1) == [.toDownload(.haveAll)])
        // Nothing to serve yet: requests are refused, interest waits.
        let r = BlockRequest(piece: 0, begin: 0, length: 16_384)
        #expect(c.handle(.message(.request(r), downloadComplete: false), now: 1) == [.send(.rejectRequest(r))])
        #expect(c.handle(.message(.interested, downloadComplete: false), now: 1) == [])
        // Once the torrent is known it is served here too.
        #expect(c.handle(.attach(fixture.torrent), now: 2) == [.serving])
        #expect(c.handle(.message(.interested, downloadComplete: false), now: 2) == [.interested(true)])
        #expect(c.handle(.socketClosed, now: 3) == [.close(.closedByPeer), .left(served: true, downloading: true, reason: .closedByPeer)])
    }

    /// Issue 16: a fatal message and `interested` in one read.
    @Test func aCloseIsDecidedOnceAndNothingIsProcessedAfterIt() {
        var c = PeerConnection(outgoing: false)
        seeding(&c)
        let block = PeerMessage.piece(piece: 0, begin: 0, block: ByteBuffer(bytes: [1]))
        #expect(c.handle(.message(block, downloadComplete: false), now: 1) == [.close(.unsolicitedPiece)])
        #expect(c.handle(.message(.interested, downloadComplete: false), now: 1) == [])
        #expect(c.session?.peerInterested == false)
        #expect(c.handle(.choke(false), now: 1) == [])
        #expect(c.handle(.close(.shuttingDown), now: 2) == [])
        #expect(c.closeReason == .unsolicitedPiece)
        #expect(c.handle(.socketClosed, now: 3) == [.left(served: true, downloading: false, reason: .unsolicitedPiece)])
        #expect(c.handle(.socketClosed, now: 3) == [])
    }
}
