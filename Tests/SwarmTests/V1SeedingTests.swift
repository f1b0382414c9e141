import Foundation
import NIOCore
import Testing
import Bencode
import Hashing
import Metainfo
import Storage
@testable import Swarm

private func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }

/// A plain v1 torrent made by hand (as other tools make them): pieces span files.
@Suite(.serialized) struct V1Seeding {
    let dir: URL
    let a = content(7, 40_000), b = content(8, 30_000)
    let metainfo: Metainfo
    let torrent: SeedTorrent
    let seeder: Seeder
    let port: Int

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("webseed-v1-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data(a).write(to: dir.appendingPathComponent("a.bin"))
        try Data(b).write(to: dir.appendingPathComponent("b.bin"))
        let stream = a + b
        var pieces: [UInt8] = []
        var i = 0
        while i < stream.count { pieces += Digests.sha1(Array(stream[i..<min(i + 16_384, stream.count)])).bytes; i += 16_384 }
        let info = BValue.dictionary(BDictionary([
            ("name", .string("d")), ("piece length", .integer(16_384)), ("pieces", .bytes(pieces)),
            ("files", .list([
                .dictionary(BDictionary([("length", .integer(40_000)), ("path", .list([.string("a.bin")]))])),
                .dictionary(BDictionary([("length", .integer(30_000)), ("path", .list([.string("b.bin")]))])),
            ])),
        ]))
        metainfo = try Metainfo(bytes: BValue.dictionary(BDictionary([("info", info)])).encoded())
        let data = LocalDataVerifier.verify(metainfo, directory: dir.path, resumePath: nil)
        precondition(data.pieces.isFull && data.generations.count == 2)
        torrent = SeedTorrent(metainfo: metainfo, directory: dir.path, data: data)
        seeder = Seeder()
        seeder.add(torrent)
        port = try seeder.listen(host: "127.0.0.1", port: 0).port!
    }

    private func connect() throws -> FakePeer {
        let peer = try FakePeer(port: port)
        peer.send(FakePeer.handshake(metainfo.v1InfoHash!.bytes))
        _ = peer.receive(68); _ = peer.message(); _ = peer.message()
        peer.send(be32(1) + [2])
        #expect(peer.message()?.0 == 1)
        return peer
    }

    private func request(_ peer: FakePeer, piece: UInt32, begin: UInt32, length: UInt32) -> (UInt8?, [UInt8])? {
        peer.send(be32(13) + [6] + be32(piece) + be32(begin) + be32(length))
        return peer.message()
    }

    @Test func blocksAcrossFilesAreServedAndAnEditedFileWithdrawsItsPieces() throws {
        defer { seeder.shutdown(); try? FileManager.default.removeItem(at: dir) }
        let peer = try connect()
        // Piece 2 covers bytes 32768..<49152: the end of a.bin and the start of b.bin.
        let (id, payload) = try #require(request(peer, piece: 2, begin: 0, length: 16_384))
        #expect(id == 7 && Array(payload[8...]) == Array((a + b)[32_768..<49_152]))

        var changed = b
        changed[100] ^= 0xff  // in piece 2
        try Data(changed).write(to: dir.appendingPathComponent("b.bin"))
        #expect(request(peer, piece: 2, begin: 0, length: 16_384)?.0 == 16)  // rejected
        #expect(!torrent.pieces.contains(2))
        // Piece 1 lies wholly in a.bin, unchanged: still served.
        let (id1, p1) = try #require(request(peer, piece: 1, begin: 0, length: 16_384))
        #expect(id1 == 7 && Array(p1[8...]) == Array(a[16_384..<32_768]))
    }
}
