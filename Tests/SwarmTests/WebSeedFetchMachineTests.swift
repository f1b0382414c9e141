import Metainfo
import NIOCore
import PeerWire
import Storage
import Testing
@testable import Swarm

/// A web seed as the download's machine sees it: a peer keyed like any other whose host is
/// its URL, with a deep queue, that cannot send a magnet's metadata.
@Suite struct WebSeedFetchMachineTests {
    typealias Action = FetchMachine.Action

    final class Source {
        let info: FetchPeerInfo
        init(_ info: FetchPeerInfo) { self.info = info }
        var key: ObjectIdentifier { ObjectIdentifier(self) }
    }

    let options = FetchOptions(directory: "/nonexistent/out", defaultParent: "/nonexistent", stateDirectory: "/nonexistent")
    let webSeed = Source(FetchPeerInfo(address: "http://127.0.0.1:8080/s/", host: "http://127.0.0.1:8080/s/", isV2: false, fast: true, isWebSeed: true))
    let peer = Source(FetchPeerInfo(address: "127.0.0.1:6881", host: "127.0.0.1", isV2: true, fast: true))

    func downloading(_ f: Fixture) -> FetchMachine {
        var m = FetchMachine(v1Hash: f.metainfo.v1InfoHash, v2Hash: f.metainfo.v2InfoHash, metainfo: f.metainfo, options: options, now: 0)
        _ = m.handle(.start, now: 0)
        let start = FetchDisk.Start(pieces: PieceSet(count: f.metainfo.pieceCount), fromRecord: 0, rechecked: 0, generations: [:], leaves: [:])
        _ = m.handle(.checked(.success(start)), now: 0)
        return m
    }

    func join(_ m: inout FetchMachine, _ s: Source) -> [Action] {
        m.handle(.peerJoined(s.key, s.info), now: 0) + m.handle(.message(.haveAll, from: s.key), now: 0) + m.handle(.message(.unchoke, from: s.key), now: 0)
    }

    func requests(_ actions: [Action], to s: Source) -> [BlockRequest] {
        actions.flatMap { a -> [BlockRequest] in
            guard case .send(let messages, let key) = a, key == s.key else { return [] }
            return messages.compactMap { if case .request(let r) = $0 { r } else { nil } }
        }
    }

    @Test func aPieceFromAWebSeedThatFailsItsHashBansTheSeedNotItsAddress() throws {
        let f = try Fixture(files: ["a.bin": content(1, 16_384)])
        var m = downloading(f)
        let asked = requests(join(&m, webSeed), to: webSeed)
        #expect(asked == [BlockRequest(piece: 0, begin: 0, length: 16_384)])
        _ = m.handle(.peerJoined(peer.key, peer.info), now: 0)
        let wrong = ByteBuffer(repeating: 0xEE, count: 16_384)
        let out = m.handle(.message(.piece(piece: 0, begin: 0, block: wrong), from: webSeed.key), now: 1)
        let data = try #require(out.compactMap { if case .verifyAndWrite(_, let d, _) = $0 { d } else { nil } }.first)
        let why = data.withUnsafeReadableBytes { m.known!.check.check(piece: 0, data: $0) }
        guard case .mismatch(let reason) = why else { Issue.record("wrong bytes verified"); return }
        let written = m.handle(.written(piece: 0, .mismatch(reason)), now: 1)
        let closed = written.compactMap { if case .disconnect(let key, _) = $0 { key } else { nil } }
        #expect(closed == [webSeed.key], "the peer on the same address is not banned")
        #expect(m.isBanned("http://127.0.0.1:8080/s/") && !m.isBanned("127.0.0.1"))
    }

    @Test func aWebSeedTakesADeepQueue() throws {
        let f = try Fixture(files: ["big.bin": content(2, 400 * 16_384)], pieceLength: 1 << 20)
        var m = downloading(f)
        _ = join(&m, webSeed)
        // Two seconds' worth at a high rate: well beyond the 250 a peer without `reqq` gets.
        let block = ByteBuffer(repeating: 0, count: 16_384)
        var asked = Set(m.peers[webSeed.key]!.outstanding.keys)
        for r in asked.prefix(64) { _ = m.handle(.message(.piece(piece: r.piece, begin: r.begin, block: block), from: webSeed.key), now: 0.5) }
        m.peers[webSeed.key]!.window = 400 << 20
        _ = m.handle(.tick, now: 1)
        asked = Set(m.peers[webSeed.key]!.outstanding.keys)
        #expect(asked.count > 250)
    }

    @Test func aMagnetWithOnlyWebSeedsSaysTheyCannotSendItsMetadata() throws {
        let f = try Fixture(files: ["a.bin": content(1, 1000)])
        var options = self.options
        options.usesWebSeeds = true
        var m = FetchMachine(v1Hash: nil, v2Hash: f.metainfo.v2InfoHash, metainfo: nil, options: options, now: 0)
        _ = m.handle(.start, now: 0)
        _ = m.handle(.savedTorrent(nil), now: 0)
        _ = join(&m, webSeed)
        let failed = m.handle(.tick, now: 61).compactMap { if case .fail(let e) = $0 { e.description } else { nil } }
        #expect(failed == ["no peers: none known (give --peer HOST:PORT or a magnet with x.pe=) within 60 s; web seeds cannot send a magnet's metadata (give the .torrent)"])
    }
}
