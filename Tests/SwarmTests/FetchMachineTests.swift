import Foundation
import Metainfo
import NIOCore
import PeerWire
import Storage
import Testing
@testable import Swarm

/// The download's decisions, driven by hand: fake peers are plain keys, the clock is a
/// number, disk answers are made up (or computed with `PieceCheck`). No sockets, no threads.
@Suite struct FetchMachineTests {
    typealias Action = FetchMachine.Action
    /// A fake peer: only its identity matters.
    final class Peer {
        let host: String
        init(_ host: String) { self.host = host }
        var key: ObjectIdentifier { ObjectIdentifier(self) }
        var info: FetchPeerInfo { FetchPeerInfo(address: host + ":6881", host: host, isV2: true, fast: true) }
    }

    let options = FetchOptions(directory: "/nonexistent/out", defaultParent: "/nonexistent", stateDirectory: "/nonexistent")

    /// A machine for `f` past the look at the disk, which found `have` there.
    private func downloading(_ f: Fixture, have: [Int] = [], now: Double = 0) -> (FetchMachine, [Action]) {
        var m = FetchMachine(v1Hash: f.metainfo.v1InfoHash, v2Hash: f.metainfo.v2InfoHash, metainfo: f.metainfo, options: options, now: now)
        var actions = m.handle(.start, now: now)
        #expect(actions.contains { if case .check = $0 { true } else { false } })
        var pieces = PieceSet(count: f.metainfo.pieceCount)
        for p in have { pieces.insert(p) }
        let start = FetchDisk.Start(pieces: pieces, fromRecord: have.count, rechecked: 0, generations: [:], leaves: [:])
        actions += m.handle(.checked(.success(start)), now: now)
        #expect(m.phase.isDownloading)
        return (m, actions)
    }

    /// Joins a seed that unchokes us; returns what the machine did.
    private func seed(_ m: inout FetchMachine, _ peer: Peer, now: Double, join: Bool = true) -> [Action] {
        if join { _ = m.handle(.peerJoined(peer.key, peer.info), now: now) }
        return m.handle(.message(.haveAll, from: peer.key), now: now) + m.handle(.message(.unchoke, from: peer.key), now: now)
    }

    private func sent(_ actions: [Action], to peer: Peer) -> [PeerMessage] {
        actions.flatMap { a -> [PeerMessage] in
            if case .send(let messages, let key) = a, key == peer.key { messages } else { [] }
        }
    }

    private func requests(_ actions: [Action], to peer: Peer) -> [BlockRequest] {
        sent(actions, to: peer).compactMap { if case .request(let r) = $0 { r } else { nil } }
    }

    private func cancels(_ actions: [Action], to peer: Peer) -> [BlockRequest] {
        sent(actions, to: peer).compactMap { if case .cancel(let r) = $0 { r } else { nil } }
    }

    private func verifying(_ actions: [Action]) -> [(piece: Int, data: ByteBuffer)] {
        actions.compactMap { if case .verifyAndWrite(let p, let data, _) = $0 { (p, data) } else { nil } }
    }

    /// The bytes of block `r` as an honest peer sends them.
    private func block(_ f: Fixture, _ r: BlockRequest) -> ByteBuffer {
        let offset = Int64(r.piece) * Int64(f.metainfo.pieceLength) + Int64(r.begin)
        var out = [UInt8](repeating: 0, count: Int(r.length))
        out.withUnsafeMutableBytes { try! f.torrent.reader.read(offset: offset, into: $0) }
        return ByteBuffer(bytes: out)
    }

    private func deliver(_ m: inout FetchMachine, _ f: Fixture, _ r: BlockRequest, from peer: Peer, now: Double) -> [Action] {
        m.handle(.message(.piece(piece: r.piece, begin: r.begin, block: block(f, r)), from: peer.key), now: now)
    }

    /// What the disk threads would answer for a finished piece.
    private func written(_ m: FetchMachine, _ piece: Int, _ data: ByteBuffer) -> FetchDisk.Written {
        switch data.withUnsafeReadableBytes({ m.known!.check.check(piece: piece, data: $0) }) {
        case .verified(let leaves): .ok(leaves: leaves, generation: nil)
        case .mismatch(let why): .mismatch(why)
        }
    }

    @Test func aWholeDownloadFinishesAndDropsSeeds() throws {
        let f = try Fixture(files: ["a.bin": content(11, 40_000)])
        let file = try #require(f.metainfo.files.firstIndex { $0.pathString == "a.bin" })
        var (m, _) = downloading(f)
        _ = m.handle(.want(file: file, range: 0..<40_000, deadline: 9, waiter: 1), now: 0)
        let peer = Peer("10.0.0.1")
        var actions: [Action] = []
        for r in requests(seed(&m, peer, now: 0), to: peer) {
            for (p, data) in verifying(deliver(&m, f, r, from: peer, now: 1)) {
                actions += m.handle(.written(piece: p, written(m, p, data)), now: 1)
            }
        }
        #expect(sent(actions, to: peer).filter { if case .have = $0 { true } else { false } }.count == 3)
        let (leaves, known) = try #require(actions.compactMap { if case .finish(_, let l, let k) = $0 { (l, k) } else { nil } }.first)
        #expect(leaves[file]?.count == 3 && known[file] == 3)
        // The gateway's waiter has its bytes once they are verified, before the files are finished.
        #expect(actions.contains { if case .resolve([1]) = $0 { true } else { false } })
        let done = m.handle(.finished(.success(FetchDisk.Finished(trees: [], generations: [:]))), now: 2.5)
        #expect(done.contains { if case .report(.complete(_, _, 2.5)) = $0 { true } else { false } })
        #expect(done.contains { if case .disconnect(let key, .bothSeeds) = $0 { key == peer.key } else { false } })
        #expect(m.progress.complete && m.progress.verified == 40_000)
    }

    @Test func aPeerThatAloneSentABadPieceIsBanned() throws {
        let f = try Fixture(files: ["a.bin": content(1, 40_000)])
        var (m, _) = downloading(f)
        let liar = Peer("10.0.0.1")
        let asked = requests(seed(&m, liar, now: 0), to: liar)
        #expect(Set(asked.map(\.piece)) == [0, 1, 2])
        var finished: [(piece: Int, data: ByteBuffer)] = []
        for r in asked {
            var data = block(f, r)
            if r.piece == 1 { data.setInteger(~data.getInteger(at: 100, as: UInt8.self)!, at: 100) }
            finished += verifying(m.handle(.message(.piece(piece: r.piece, begin: r.begin, block: data), from: liar.key), now: 1))
        }
        #expect(finished.map(\.piece).sorted() == [0, 1, 2])
        var actions: [Action] = []
        for (p, data) in finished { actions += m.handle(.written(piece: p, written(m, p, data)), now: 2) }
        let why = try #require(actions.compactMap { a -> String? in
            if case .report(.peerBanned(let address, let reason)) = a, address == "10.0.0.1" { reason.description } else { nil }
        }.first)
        #expect(why.hasPrefix("piece 1 "))
        #expect(actions.contains { if case .report(.hashFailed(piece: 1)) = $0 { true } else { false } })
        #expect(actions.contains { if case .disconnect(let key, .banned(.pieceMismatch(why))) = $0 { key == liar.key } else { false } })
        #expect(FetchCloseReason.banned(.pieceMismatch(why)).description == "banned: " + why)
        #expect(m.isBanned("10.0.0.1"))
        #expect(m.progress.pieces == 2)
    }

    @Test func anUnusableDownloadRecordIsReportedBeforeResuming() throws {
        let f = try Fixture(files: ["a.bin": content(1, 40_000)])
        var m = FetchMachine(v1Hash: f.metainfo.v1InfoHash, v2Hash: f.metainfo.v2InfoHash, metainfo: f.metainfo, options: options, now: 0)
        _ = m.handle(.start, now: 0)
        let problem = StorageError.notARegularFile("/state/x.fetch", kind: "a FIFO")
        let start = FetchDisk.Start(pieces: PieceSet(count: f.metainfo.pieceCount), fromRecord: 0, rechecked: 0, generations: [:], leaves: [:],
                                    recordProblem: problem)
        let reports = m.handle(.checked(.success(start)), now: 0).compactMap { a -> FetchEvent? in if case .report(let e) = a { e } else { nil } }
        guard reports.count == 2, case .recordUnusable(problem) = reports[0], case .resumed = reports[1] else {
            Issue.record("\(reports)")
            return
        }
    }

    @Test func aBadPieceFromTwoPeersBansNobodyAndIsAskedOfOnePeer() throws {
        let f = try Fixture(files: ["a.bin": content(10, 32_768)], pieceLength: 32_768)
        var (m, _) = downloading(f)
        let a = Peer("10.0.0.1"), b = Peer("10.0.0.2")
        let blocks = requests(seed(&m, a, now: 0), to: a)
        #expect(Set(requests(seed(&m, b, now: 1), to: b)) == Set(blocks))  // end-game
        var bad = block(f, blocks[0])
        bad.setInteger(UInt8(0xAA) ^ bad.getInteger(at: 0, as: UInt8.self)!, at: 0)
        _ = m.handle(.message(.piece(piece: blocks[0].piece, begin: blocks[0].begin, block: bad), from: a.key), now: 2)
        let whole = try #require(verifying(deliver(&m, f, blocks[1], from: b, now: 2)).first)
        let outcome = m.handle(.written(piece: 0, written(m, 0, whole.data)), now: 3)
        #expect(!outcome.contains { if case .report(.peerBanned) = $0 { true } else { false } })
        #expect(outcome.contains { if case .report(.hashFailed(piece: 0)) = $0 { true } else { false } })
        #expect(m.banned.isEmpty)
        // Who lied is unknown: the piece is fetched again, all of it from one peer.
        let again = outcome + m.handle(.tick, now: 4)
        let toA = requests(again, to: a), toB = requests(again, to: b)
        #expect(Set(toA + toB) == Set(blocks))
        #expect(toA.isEmpty || toB.isEmpty)
    }

    @Test func aStalledPeersRequestsTimeOutAndGoToAnother() throws {
        let f = try Fixture(files: ["a.bin": content(2, 4 * 16_384)])
        var (m, _) = downloading(f)
        let slow = Peer("10.0.0.1"), quick = Peer("10.0.0.2")
        // Each takes one request at a time (reqq 1), so the end-game does not start.
        for peer in [slow, quick] {
            _ = m.handle(.peerJoined(peer.key, peer.info), now: 0)
            var h = ExtensionHandshake()
            h.requestQueue = 1
            _ = m.handle(.message(.extended(id: 0, payload: ByteBuffer(bytes: h.encode())), from: peer.key), now: 0)
        }
        let held = requests(seed(&m, slow, now: 0, join: false), to: slow)
        let first = requests(seed(&m, quick, now: 0, join: false), to: quick)
        #expect(held.count == 1 && first.count == 1 && held != first)
        #expect(m.handle(.tick, now: 10).allSatisfy { if case .send = $0 { false } else { true } })
        let second = requests(deliver(&m, f, first[0], from: quick, now: 20), to: quick)
        #expect(second.count == 1 && second != held)
        let timedOut = m.handle(.tick, now: FetchMachine.requestTimeout + 1)
        #expect(cancels(timedOut, to: slow) == held)
        #expect(cancels(timedOut, to: quick).isEmpty)
        #expect(requests(timedOut, to: slow).isEmpty)
        // The quick peer's next request is the block the slow one sat on, before any new piece.
        let next = deliver(&m, f, second[0], from: quick, now: FetchMachine.requestTimeout + 1.5)
        #expect(requests(next, to: quick) == held)
        // The slow peer's late answer is not a protocol violation.
        let late = deliver(&m, f, held[0], from: slow, now: FetchMachine.requestTimeout + 2)
        #expect(!late.contains { if case .disconnect = $0 { true } else { false } })
    }

    @Test func theEndGameAsksTwoPeersAndCancelsTheLoser() throws {
        let f = try Fixture(files: ["a.bin": content(3, 32_768)], pieceLength: 32_768)
        var (m, _) = downloading(f)
        let a = Peer("10.0.0.1"), b = Peer("10.0.0.2")
        let first = requests(seed(&m, a, now: 0), to: a)
        #expect(first.count == 2)
        // Past the end-game delay, the last blocks are asked of the second peer too.
        let second = requests(seed(&m, b, now: 1), to: b)
        #expect(Set(second) == Set(first))
        let one = deliver(&m, f, first[0], from: a, now: 2)
        #expect(cancels(one, to: b) == [first[0]])
        // b's copy was already on its way: dropped quietly.
        let stray = deliver(&m, f, first[0], from: b, now: 2.1)
        #expect(!stray.contains { if case .disconnect = $0 { true } else { false } })
        let last = deliver(&m, f, first[1], from: b, now: 2.2)
        #expect(cancels(last, to: a) == [first[1]])
        #expect(verifying(last).map(\.piece) == [0])
    }

    @Test func aGatewayDeadlineIsServedFirst() throws {
        let f = try Fixture(files: ["a.bin": content(4, 10 * 16_384)])
        let file = try #require(f.metainfo.files.firstIndex { $0.pathString == "a.bin" })
        var (m, _) = downloading(f)
        let wanted = m.handle(.want(file: file, range: 8 * 16_384 + 5..<8 * 16_384 + 10, deadline: 5, waiter: 7), now: 0)
        #expect(wanted.isEmpty)
        let peer = Peer("10.0.0.1")
        let asked = requests(seed(&m, peer, now: 0), to: peer)
        #expect(asked.first?.piece == 8)
        let done = verifying(deliver(&m, f, asked[0], from: peer, now: 1))
        #expect(done.map(\.piece) == [8])
        let resolved = m.handle(.written(piece: 8, written(m, 8, done[0].data)), now: 1)
        #expect(resolved.contains { if case .resolve([7]) = $0 { true } else { false } })
    }

    @Test func aRestartFromTheRecordAsksOnlyForTheRest() throws {
        let f = try Fixture(files: ["a.bin": content(5, 4 * 16_384)])
        var (m, started) = downloading(f, have: [0, 2])
        #expect(started.contains { if case .report(.resumed(_, 2, 4, 2, 0)) = $0 { true } else { false } })
        #expect(m.progress.verified == 2 * 16_384)
        let peer = Peer("10.0.0.1")
        let asked = requests(seed(&m, peer, now: 0), to: peer)
        #expect(Set(asked.map(\.piece)) == [1, 3])
    }

    @Test func metadataNotMatchingTheInfoHashIsRejected() throws {
        let f = try Fixture(files: ["site.txt": content(6, 5_000)])
        let other = try Fixture(files: ["evil.txt": content(7, 5_000)])
        var m = FetchMachine(v1Hash: nil, v2Hash: f.metainfo.v2InfoHash, metainfo: nil, options: options, now: 0)
        #expect(m.handle(.start, now: 0).contains { if case .loadSavedTorrent = $0 { true } else { false } })
        // A saved torrent of another info hash is not taken either.
        _ = m.handle(.savedTorrent(other.metainfo), now: 0)
        #expect(m.metainfo == nil)

        func offer(_ peer: Peer, _ info: [UInt8]) -> [Action] {
            _ = m.handle(.peerJoined(peer.key, peer.info), now: 1)
            var h = ExtensionHandshake()
            h.messages = ["ut_metadata": 3]
            h.metadataSize = info.count
            let asked = m.handle(.message(.extended(id: 0, payload: ByteBuffer(bytes: h.encode())), from: peer.key), now: 1)
            #expect(sent(asked, to: peer).count == 1)
            let data = MetadataMessage.data(piece: 0, totalSize: info.count, payload: info).encode()
            return m.handle(.message(.extended(id: PeerSession.utMetadataID, payload: ByteBuffer(bytes: data)), from: peer.key), now: 2)
        }
        let liar = Peer("10.0.0.1"), honest = Peer("10.0.0.2")
        let lied = offer(liar, other.metainfo.infoBytes)
        #expect(lied.contains { if case .disconnect(let key, .banned(.metadataHash)) = $0 { key == liar.key } else { false } })
        #expect(m.banned["10.0.0.1"]?.description == "metadata does not match the info hash")
        #expect(m.metainfo == nil)
        let told = offer(honest, f.metainfo.infoBytes)
        #expect(m.metainfo?.v2InfoHash == f.metainfo.v2InfoHash)
        #expect(told.contains { if case .report(.metadata(_, _, "10.0.0.2:6881"?)) = $0 { true } else { false } })
    }

    /// libtorrent answers a metadata request at once only while its send buffer holds less
    /// than 160 KiB, and the rest once a second: at most 8 pieces are asked at a time, one
    /// more as each arrives, and all of them are asked in the end.
    @Test func metadataIsAskedForEightPiecesAtATime() throws {
        let f = try Fixture(files: ["site.txt": content(6, 5_000)])
        var m = FetchMachine(v1Hash: nil, v2Hash: f.metainfo.v2InfoHash, metainfo: nil, options: options, now: 0)
        _ = m.handle(.start, now: 0)
        let peer = Peer("10.0.0.1")
        _ = m.handle(.peerJoined(peer.key, peer.info), now: 1)
        let count = 20
        let size = count * MetadataMessage.pieceSize - 100
        var h = ExtensionHandshake()
        h.messages = ["ut_metadata": 3]
        h.metadataSize = size
        func asked(_ actions: [Action]) -> [Int] {
            sent(actions, to: peer).compactMap { message -> Int? in
                guard case .extended(3, let payload) = message, case .request(let piece)? = try? MetadataMessage.decode(Array(buffer: payload)) else { return nil }
                return piece
            }
        }
        var all = asked(m.handle(.message(.extended(id: 0, payload: ByteBuffer(bytes: h.encode())), from: peer.key), now: 1))
        #expect(all == Array(0..<8))
        var last: [Action] = []
        for piece in 0..<count {
            let length = piece == count - 1 ? size - piece * MetadataMessage.pieceSize : MetadataMessage.pieceSize
            let data = MetadataMessage.data(piece: piece, totalSize: size, payload: [UInt8](repeating: 0, count: length)).encode()
            last = m.handle(.message(.extended(id: PeerSession.utMetadataID, payload: ByteBuffer(bytes: data)), from: peer.key), now: 2)
            let more = asked(last)
            #expect(more == (piece + 8 < count ? [piece + 8] : []), "after piece \(piece)")
            all += more
        }
        #expect(all == Array(0..<count))
        // Zeros are not the info dict: once all have come, the hash check bans the peer.
        #expect(last.contains { if case .disconnect(let key, .banned(.metadataHash)) = $0 { key == peer.key } else { false } })
    }

    @Test func pieceLayersAreProvedAgainstTheRootAndALiarIsBanned() throws {
        let f = try Fixture(files: ["long.bin": content(9, 40 * 16_384)], hybrid: false)
        let file = try #require(f.metainfo.files.firstIndex { $0.pathString == "long.bin" })
        let tree = try #require(f.torrent.trees[f.metainfo.files[file].piecesRoot!])
        var stripped = f.metainfo
        stripped.pieceLayers = [:]  // as from a magnet: the layers come from peers
        var m = FetchMachine(v1Hash: nil, v2Hash: f.metainfo.v2InfoHash, metainfo: nil, options: options, now: 0)
        _ = m.handle(.start, now: 0)
        let liar = Peer("10.0.0.1"), honest = Peer("10.0.0.2")
        _ = m.handle(.peerJoined(liar.key, liar.info), now: 0)
        let asked = m.handle(.savedTorrent(stripped), now: 0)
        let request = try #require(sent(asked, to: liar).compactMap { if case .hashRequest(let r) = $0 { r } else { nil } }.first)
        // Nothing on disk needs the layer: the disk is looked at at once, the layer follows.
        #expect(asked.contains { if case .check = $0 { true } else { false } })

        func answer(_ r: HashRequest, wrong: Bool) -> ByteBuffer {
            var hashes = tree.hashes(baseLayer: Int(r.baseLayer), index: Int(r.index), length: Int(r.length), proofLayers: Int(r.proofLayers))!
            if wrong { hashes[1] = .zero }
            return ByteBuffer(bytes: hashes.flatMap(\.bytes))
        }
        let lied = m.handle(.message(.hashes(request, hashes: answer(request, wrong: true)), from: liar.key), now: 1)
        #expect(lied.contains { if case .disconnect(let key, .banned(.layerHashes("long.bin"))) = $0 { key == liar.key } else { false } })
        #expect(m.banned["10.0.0.1"]?.description == "hashes for long.bin do not match its pieces root")
        // The request is asked again, of the next peer that can answer it.
        _ = m.handle(.peerLeft(liar.key), now: 1)
        let again = m.handle(.peerJoined(honest.key, honest.info), now: 2) + m.handle(.tick, now: 2)
        #expect(sent(again, to: honest) == [.hashRequest(request)])
        let proved = m.handle(.message(.hashes(request, hashes: answer(request, wrong: false)), from: honest.key), now: 3)
        let saved = try #require(proved.compactMap { if case .saveTorrent(_, let layers) = $0 { layers } else { nil } }.first)
        #expect(saved == f.metainfo.pieceLayers)
        #expect(m.known?.check.layers == f.metainfo.pieceLayers)
    }

    @Test func nothingReceivedForTheTimeoutFailsTheDownload() throws {
        let f = try Fixture(files: ["a.bin": content(8, 40_000)])
        var (m, _) = downloading(f, now: 100)
        let peer = Peer("10.0.0.1")
        _ = seed(&m, peer, now: 100)
        #expect(!m.handle(.tick, now: 100 + options.timeout).contains { if case .fail = $0 { true } else { false } })
        let actions = m.handle(.tick, now: 101 + options.timeout)
        let failure = try #require(actions.compactMap { if case .fail(let e) = $0 { e } else { nil } }.first)
        #expect(failure.description == "stalled: nothing received for 60 s (1 peer connected)")
        #expect(m.isFailed)

        var lonely = FetchMachine(v1Hash: nil, v2Hash: f.metainfo.v2InfoHash, metainfo: nil, options: options, now: 0)
        _ = lonely.handle(.start, now: 0)
        let none = lonely.handle(.tick, now: 61).compactMap { if case .fail(let e) = $0 { e.description } else { nil } }
        #expect(none == ["no peers: none known (give --peer HOST:PORT or a magnet with x.pe=) within 60 s"])
    }
}

extension FetchMachine.Phase {
    var isDownloading: Bool { if case .downloading = self { true } else { false } }
}
