import NIOCore
import Testing
import Bencode
import Hashing
import PeerWire
@testable import Swarm

private func reserved(fast: Bool = true, ext: Bool = true) -> Reserved {
    var r = Reserved()
    r.fast = fast
    r.extensionProtocol = ext
    return r
}

@Suite struct Sessions {
    let fixture: Fixture
    init() throws { fixture = try Fixture(files: ["index.html": content(1, 40_000), "a.css": content(2, 100)]) }

    private func session(fast: Bool = true, ext: Bool = true, v2: Bool = true) -> PeerSession {
        PeerSession(torrent: fixture.torrent, isV2: v2, peer: reserved(fast: fast, ext: ext), peerAddress: [127, 0, 0, 1], now: 0)
    }

    @Test func aSeedOpensWithHaveAllAndAnExtensionHandshake() throws {
        var s = session()
        let actions = s.start(now: 0)
        #expect(actions.first == .send(.haveAll))
        guard case .send(.extended(0, let payload)) = actions.last else { Issue.record("no extension handshake"); return }
        let h = try ExtensionHandshake(decoding: Array(buffer: payload))
        #expect(h.metadataSize == fixture.metainfo.infoBytes.count)
        #expect(h.messages["ut_metadata"] == PeerSession.utMetadataID)
        #expect(h.uploadOnly && h.yourIP == [127, 0, 0, 1])
    }

    @Test func withoutTheFastExtensionASeedSendsAFullBitfield() {
        var s = session(fast: false, ext: false)
        let actions = s.start(now: 0)
        #expect(actions == [.send(.bitfield(ByteBuffer(bytes: fixture.torrent.pieces.bytes)))])
    }

    @Test func requestsWhileChokedAreRejectedWithFastAndIgnoredWithout() {
        let r = BlockRequest(piece: 0, begin: 0, length: 16_384)
        var fast = session()
        #expect(fast.receive(.request(r), now: 1) == [.send(.rejectRequest(r))])
        var plain = session(fast: false)
        #expect(plain.receive(.request(r), now: 1) == [])
    }

    @Test func everyRequestGetsExactlyOneAnswer() {
        var s = session()
        _ = s.setChoking(false)
        let a = BlockRequest(piece: 0, begin: 0, length: 16_384)
        let b = BlockRequest(piece: 1, begin: 0, length: 16_384)
        #expect(s.receive(.request(a), now: 1) == [])
        #expect(s.startReads() == [.read([a])])
        #expect(s.receive(.request(b), now: 1) == [])
        #expect(s.startReads() == [.read([b])])
        // Cancelled while its read is in flight: rejected now, and the late read sends nothing.
        #expect(s.receive(.cancel(b), now: 1) == [.send(.rejectRequest(b))])
        #expect(s.blockRead(b, data: ByteBuffer(bytes: [1]), now: 2) == [])
        #expect(s.receive(.cancel(b), now: 2) == [])
        let data = ByteBuffer(bytes: content(9, 16_384))
        #expect(s.blockRead(a, data: data, now: 2) == [.send(.piece(piece: 0, begin: 0, block: data))])
        #expect(s.uploaded == 16_384)
    }

    @Test func chokingRejectsEverythingOutstanding() {
        var s = session()
        _ = s.setChoking(false)
        let requests = (0..<3).map { BlockRequest(piece: UInt32($0), begin: 0, length: 16_384) }
        for r in requests { _ = s.receive(.request(r), now: 1) }
        let actions = s.setChoking(true)
        #expect(actions.first == .send(.choke))
        #expect(Set(actions.dropFirst().map { "\($0)" }) == Set(requests.map { "\(PeerSession.Action.send(.rejectRequest($0)))" }))
        #expect(s.blockRead(requests[0], data: ByteBuffer(bytes: [1]), now: 2) == [])
    }

    @Test func readsAreLimitedAndResumeAsBlocksGoOut() {
        var s = session()
        _ = s.setChoking(false)
        var reading = 0
        for i in 0..<(PeerSession.readAhead + 10) {
            let r = BlockRequest(piece: UInt32(i % 3), begin: UInt32(i / 3) * 16, length: 16)
            _ = s.receive(.request(r), now: 1)
            for case .read(let batch) in s.startReads() { reading += batch.count }
        }
        #expect(reading == PeerSession.readAhead)
        #expect(s.setWritable(false) == [])
    }

    @Test func contiguousRequestsAreReadTogether() {
        #expect(PeerSession.readBatch >= 10)
        var s = session()
        _ = s.setChoking(false)
        let run = (0..<10).map { BlockRequest(piece: 1, begin: UInt32($0) * 1_024, length: 1_024) }
        let apart = BlockRequest(piece: 2, begin: 0, length: 16_384)
        for r in run + [apart] { #expect(s.receive(.request(r), now: 1) == []) }  // one socket read's worth
        let batches = s.startReads().compactMap { a -> [BlockRequest]? in if case .read(let b) = a { b } else { nil } }
        #expect(batches == [run, [apart]])
    }

    @Test(arguments: [
        BlockRequest(piece: 0, begin: 0, length: 32_768),
        BlockRequest(piece: 0, begin: 16_000, length: 1_000),
        BlockRequest(piece: 99, begin: 0, length: 16_384),
        BlockRequest(piece: 0, begin: 0, length: 0),
    ])
    func invalidRequestsAreRejectedOrCostTheConnection(_ r: BlockRequest) {
        var fast = session()
        _ = fast.setChoking(false)
        #expect(fast.receive(.request(r), now: 1) == [.send(.rejectRequest(r))])
        var plain = session(fast: false)
        _ = plain.setChoking(false)
        guard case .close = plain.receive(.request(r), now: 1).first else { Issue.record("kept a peer sending \(r)"); return }
    }

    @Test func hashRequestsAreAnsweredOnlyOnV2Connections() throws {
        let root = try #require(fixture.metainfo.files.first { $0.pathString == "index.html" }?.piecesRoot)
        let h = HashRequest(piecesRoot: root, baseLayer: 0, index: 0, length: 4, proofLayers: 1)
        var v2 = session()
        guard case .send(.hashes(h, let hashes)) = v2.receive(.hashRequest(h), now: 1).first else { Issue.record("no hashes"); return }
        #expect(hashes.readableBytes == 4 * 32)
        var v1 = session(v2: false)
        #expect(v1.receive(.hashRequest(h), now: 1) == [.send(.hashReject(h))])
        let unknown = HashRequest(piecesRoot: Digests.sha256([0]), baseLayer: 0, index: 0, length: 2, proofLayers: 0)
        #expect(v2.receive(.hashRequest(unknown), now: 1) == [.send(.hashReject(unknown))])
    }

    @Test func metadataIsServedInPiecesUnderThePeersOwnID() throws {
        var s = session()
        let theirs = ExtensionHandshake.withMetadataID(7)
        #expect(s.receive(.extended(id: 0, payload: ByteBuffer(bytes: theirs)), now: 1) == [])
        let ask = MetadataMessage.request(piece: 0).encode()
        guard case .send(.extended(7, let payload)) = s.receive(.extended(id: PeerSession.utMetadataID, payload: ByteBuffer(bytes: ask)), now: 1).first,
              case .data(0, let total, let data)? = try MetadataMessage.decode(Array(buffer: payload)) else {
            Issue.record("no metadata"); return
        }
        #expect(total == fixture.metainfo.infoBytes.count)
        #expect(data == Array(fixture.metainfo.infoBytes.prefix(16_384)))
        let beyond = MetadataMessage.request(piece: 5).encode()
        guard case .send(.extended(7, let r)) = s.receive(.extended(id: PeerSession.utMetadataID, payload: ByteBuffer(bytes: beyond)), now: 1).first else {
            Issue.record("no reject"); return
        }
        #expect(try MetadataMessage.decode(Array(buffer: r)) == .reject(piece: 5))
    }

    @Test func silentPeersGetKeepAlivesThenAreDropped() {
        var s = session()
        _ = s.start(now: 0)
        #expect(s.tick(now: 10) == [])
        #expect(s.tick(now: PeerSession.keepAliveInterval + 1) == [.send(.keepAlive)])
        guard case .close = s.tick(now: PeerSession.idleTimeout + 1).first else { Issue.record("idle peer kept"); return }
    }

    @Test func protocolViolationsCostTheConnection() {
        for m: PeerMessage in [.piece(piece: 0, begin: 0, block: ByteBuffer()), .haveAll, .rejectRequest(BlockRequest(piece: 0, begin: 0, length: 1)),
                               .extended(id: 0, payload: ByteBuffer())] {
            var s = session(fast: false, ext: false)  // a closed session takes nothing more
            guard case .close = s.receive(m, now: 1).first else { Issue.record("kept a peer after \(m)"); return }
        }
    }

    @Test func twoSeedsPartWays() {
        var s = session()
        guard case .close = s.receive(.haveAll, now: 1).first else { Issue.record("kept another seed"); return }
    }

    /// Issue 16: a fatal message followed, in the same read, by `interested` left a dead
    /// peer in the choker. After a close decision the session takes nothing more.
    @Test(arguments: [
        (true, PeerMessage.piece(piece: 0, begin: 0, block: ByteBuffer(bytes: [1, 2, 3]))),
        (false, PeerMessage.haveAll),
    ])
    func nothingIsProcessedAfterACloseDecision(_ fast: Bool, _ fatal: PeerMessage) {
        var s = session(fast: fast)
        guard case .close = s.receive(fatal, now: 1).last else { Issue.record("\(fatal) not fatal"); return }
        #expect(s.closed)
        #expect(s.receive(.interested, now: 1) == [])
        #expect(!s.peerInterested)
        #expect(s.setChoking(false) == [])
        #expect(s.tick(now: PeerSession.idleTimeout + 1) == [])
    }
}

extension ExtensionHandshake {
    static func withMetadataID(_ id: UInt8) -> [UInt8] { Array("d1:md11:ut_metadatai\(id)eee".utf8) }
}
