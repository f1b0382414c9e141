import Foundation
import Hashing
import Metainfo
import NIOCore
import PeerWire
import Storage
import Testing
@testable import Swarm

/// A download from a magnet needs a piece layer only for the files it fetches: the disk is
/// looked at without waiting for the layers, a gateway's file has its layer asked for first,
/// and a piece is requested only once its file's layer is proved.
@Suite struct LayerOrderTests {
    typealias Action = FetchMachine.Action
    final class Peer {
        var key: ObjectIdentifier { ObjectIdentifier(self) }
        var info: FetchPeerInfo { FetchPeerInfo(address: "10.0.0.1:6881", host: "10.0.0.1", isV2: true, fast: true) }
    }

    let options = FetchOptions(directory: "/nonexistent/out", defaultParent: "/nonexistent", stateDirectory: "/nonexistent")
    /// More files longer than a piece than one peer is asked for at once.
    static let fileCount = LayerQueue.perPeer + 6

    private func site() throws -> Fixture {
        var files: [String: [UInt8]] = [:]
        for i in 0..<Self.fileCount { files[String(format: "f%03d.bin", i)] = content(UInt8(i), 40_000) }
        return try Fixture(files: files, hybrid: false)
    }

    private func hashRequests(_ actions: [Action], to peer: Peer) -> [HashRequest] {
        actions.flatMap { a -> [HashRequest] in
            guard case .send(let messages, let key) = a, key == peer.key else { return [] }
            return messages.compactMap { if case .hashRequest(let r) = $0 { r } else { nil } }
        }
    }

    /// The files whose pieces were requested, in order of first request.
    private func requestedFiles(_ actions: [Action], _ m: FetchMachine) -> [Int] {
        var out: [Int] = []
        for a in actions {
            guard case .send(let messages, _) = a else { continue }
            for case .request(let r) in messages {
                let f = m.known!.check.file(ofPiece: Int(r.piece))!
                if !out.contains(f) { out.append(f) }
            }
        }
        return out
    }

    private func answer(_ f: Fixture, _ r: HashRequest) -> PeerMessage {
        let tree = f.torrent.trees[r.piecesRoot]!
        let hashes = tree.hashes(baseLayer: Int(r.baseLayer), index: Int(r.index), length: Int(r.length), proofLayers: Int(r.proofLayers))!
        return .hashes(r, hashes: ByteBuffer(bytes: hashes.flatMap(\.bytes)))
    }

    private func file(_ f: Fixture, _ r: HashRequest) -> Int { f.metainfo.files.firstIndex { $0.piecesRoot == r.piecesRoot }! }

    /// A machine that has the metadata (no layers) and one v2 seeder; returns what it did.
    private func fromMagnet(_ f: Fixture, _ seeder: Peer) -> (FetchMachine, [Action]) {
        var stripped = f.metainfo
        stripped.pieceLayers = [:]
        var m = FetchMachine(v1Hash: nil, v2Hash: f.metainfo.v2InfoHash, metainfo: nil, options: options, now: 0)
        _ = m.handle(.start, now: 0)
        _ = m.handle(.peerJoined(seeder.key, seeder.info), now: 0)
        let actions = m.handle(.savedTorrent(stripped), now: 0)
        return (m, actions)
    }

    @Test func aGatewaysFileNeedsOnlyItsOwnLayer() throws {
        let f = try site()
        let seeder = Peer()
        var (m, first) = fromMagnet(f, seeder)
        // The disk is looked at at once; the layers are asked for, a bounded number at a time.
        #expect(first.contains { if case .check = $0 { true } else { false } })
        let asked = hashRequests(first, to: seeder)
        #expect(asked.count == LayerQueue.perPeer - LayerQueue.reserved)
        let ready = m.handle(.checked(.success(FetchDisk.Start(pieces: PieceSet(count: f.metainfo.pieceCount), fromRecord: 0, rechecked: 0,
                                                                generations: [:], leaves: [:]))), now: 0)
        #expect(ready.contains { if case .ready = $0 { true } else { false } })
        // A seed that unchokes us: no piece is asked for while no layer is known.
        let unchoked = m.handle(.message(.haveAll, from: seeder.key), now: 0) + m.handle(.message(.unchoke, from: seeder.key), now: 0)
        #expect(requestedFiles(unchoked, m).isEmpty)
        // The gateway wants the last file, whose layer was not asked for yet: it goes at once,
        // in the room kept for such files.
        let wanted = Self.fileCount - 1
        #expect(!asked.contains { file(f, $0) == wanted })
        let want = m.handle(.want(file: wanted, range: 0..<40_000, deadline: 1, waiter: 1), now: 0)
        #expect(requestedFiles(want, m).isEmpty)
        let next = hashRequests(want, to: seeder)
        #expect(next.map { file(f, $0) } == [wanted])
        // A background layer proved: its file's pieces may be asked for.
        let firstAnswer = m.handle(.message(answer(f, asked[0]), from: seeder.key), now: 0.01)
        #expect(requestedFiles(firstAnswer, m) == [file(f, asked[0])])
        // Its layer proved, its pieces are asked for before any other.
        let proved = m.handle(.message(answer(f, next[0]), from: seeder.key), now: 0.02)
        #expect(requestedFiles(proved, m).first == wanted)
        #expect(m.known!.check.lacksLayer(file: wanted) == false)
        // Every other layer follows in the background; once all are known the torrent is saved with them.
        var pending = Array(asked.dropFirst()) + hashRequests(firstAnswer, to: seeder) + hashRequests(proved, to: seeder)
        var saved: [SHA256Digest: [SHA256Digest]]?
        while let r = pending.first {
            pending.removeFirst()
            let out = m.handle(.message(answer(f, r), from: seeder.key), now: 0.03)
            pending += hashRequests(out, to: seeder)
            for case .saveTorrent(_, let layers) in out { saved = layers }
        }
        #expect(saved == f.metainfo.pieceLayers)
        #expect(m.known!.check.missingLayers.isEmpty)
    }

    @Test func filesOnDiskWithoutTheirLayerAreLookedAtAgainOnceItIsKnown() throws {
        let f = try site()
        let seeder = Peer()
        var (m, first) = fromMagnet(f, seeder)
        var start = FetchDisk.Start(pieces: PieceSet(count: f.metainfo.pieceCount), fromRecord: 0, rechecked: 0, generations: [:], leaves: [:])
        start.unchecked = [Self.fileCount - 1]
        let looked = m.handle(.checked(.success(start)), now: 0)
        #expect(!looked.contains { if case .ready = $0 { true } else { false } })
        let asked = hashRequests(first, to: seeder)
        // Its layer is asked for at once, ahead of the rest; the disk is looked at again once it is proved.
        let next = try #require(hashRequests(looked, to: seeder).first)
        #expect(file(f, next) == Self.fileCount - 1)
        let out = m.handle(.message(answer(f, asked[0]), from: seeder.key), now: 0.01)
        #expect(!out.contains { if case .check = $0 { true } else { false } })
        let again = m.handle(.message(answer(f, next), from: seeder.key), now: 0.02)
        #expect(again.contains { if case .check = $0 { true } else { false } })
    }

    @Test func aFileThatMayBeReusedHasItsLayerBeforeTheDiskIsLookedAt() throws {
        let f = try site()
        let reused = 5
        var opts = options
        opts.reuse = [f.metainfo.files[reused].piecesRoot!: "/elsewhere/f005.bin"]
        var stripped = f.metainfo
        stripped.pieceLayers = [:]
        var m = FetchMachine(v1Hash: nil, v2Hash: f.metainfo.v2InfoHash, metainfo: nil, options: opts, now: 0)
        let seeder = Peer()
        _ = m.handle(.start, now: 0)
        _ = m.handle(.peerJoined(seeder.key, seeder.info), now: 0)
        let first = m.handle(.savedTorrent(stripped), now: 0)
        #expect(!first.contains { if case .check = $0 { true } else { false } })
        let asked = hashRequests(first, to: seeder)
        #expect(file(f, asked[0]) == reused)
        let proved = m.handle(.message(answer(f, asked[0]), from: seeder.key), now: 0.01)
        let check = try #require(proved.compactMap { if case .check(let c, _, _) = $0 { c } else { nil } }.first)
        #expect(!check.lacksLayer(file: reused))
    }
}
