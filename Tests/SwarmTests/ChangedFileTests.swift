import Bencode
import Foundation
import Hashing
import Metainfo
import NIOCore
import PeerWire
import Storage
import Testing
@testable import Swarm

/// What a read of a seeded torrent gave: the bytes, or why not.
enum ReadOutcome: Equatable {
    case bytes([UInt8])
    case changed(String)    // found changed by this read: the one report
    case withdrawn(String)  // found changed before
    case notServable
    case storage(String)

    init(_ body: () throws(SeedTorrent.ReadError) -> ByteBuffer) {
        do {
            self = .bytes(Array(buffer: try body()))
        } catch {
            switch error {
            case .changedOnDisk(let path): self = .changed(path)
            case .withdrawn(let path): self = .withdrawn(path)
            case .notServable: self = .notServable
            case .storage(let e): self = .storage(e.description)
            }
        }
    }
}

/// A file changed under a running seeder (no sockets: reads as `PeerHandler` and the gateway
/// make them). A file of another size is withdrawn on the first read of it, whoever reads it,
/// and reported once; a file changed at the same size is served only where its leaves still
/// hash to its tree.
@Suite struct ChangedFileTests {
    let page = content(1, 40_000)  // pieces 0, 1, 2 (16 KiB pieces)
    let other = content(2, 20_000)  // pieces 3, 4
    let fixture: Fixture
    var torrent: SeedTorrent { fixture.torrent }

    init() throws {
        fixture = try Fixture(files: ["index.html": page, "other.bin": other])
    }

    var pageFile: Int { file("index.html") }
    func file(_ path: String) -> Int { torrent.metainfo.files.firstIndex { $0.pathString == path }! }
    func path(_ name: String) -> String { fixture.dir.appendingPathComponent(name).path }

    /// What a peer asking for `length` bytes at `begin` of `piece` gets.
    func peerRead(piece: UInt32, begin: UInt32 = 0, length: UInt32 = 16_384) -> ReadOutcome {
        ReadOutcome { () throws(SeedTorrent.ReadError) in
            try torrent.readBlock(BlockRequest(piece: piece, begin: begin, length: length), allocator: ByteBufferAllocator())
        }
    }

    /// What the gateway asking for bytes `range` of `path` gets.
    func gatewayRead(_ path: String, _ range: Range<Int64>) -> ReadOutcome {
        ReadOutcome { () throws(SeedTorrent.ReadError) in
            try torrent.readVerified(file: file(path), offset: range.lowerBound, length: Int(range.count))
        }
    }

    func append(_ name: String, _ bytes: [UInt8]) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path(name)))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: bytes)
    }

    func truncate(_ name: String, to size: UInt64) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path(name)))
        defer { try? handle.close() }
        try handle.truncate(atOffset: size)
    }

    func servesPieces(_ pieces: [Int]) -> Bool { pieces.allSatisfy { torrent.pieces.contains($0) } }

    @Test func anAppendedFileIsWithdrawnForPeersAndReportedOnce() throws {
        #expect(peerRead(piece: 0) == .bytes(Array(page[0..<16_384])))
        try append("index.html", Array("<!-- appended -->".utf8))
        // Its old bytes still hash right, but it is not the file that verified.
        #expect(peerRead(piece: 0) == .changed("index.html"))
        #expect(!servesPieces([0]) && !servesPieces([1]) && !servesPieces([2]))
        #expect(peerRead(piece: 1) == .notServable)  // withdrawn: no second report
        #expect(gatewayRead("index.html", 0..<100) == .withdrawn("index.html"))
        #expect(torrent.changedFiles == ["index.html"])
        // The other file is served as before.
        #expect(servesPieces([3, 4]) && peerRead(piece: 3) == .bytes(Array(other[0..<16_384])))
    }

    @Test func aBatchOfRequestsToAnAppendedFileIsRefused() throws {
        try append("index.html", [0x0a])
        let requests = (0..<3).map { BlockRequest(piece: UInt32($0), begin: 0, length: 16_384) }
        // The event loop's cached path sees another file and leaves it to the disk threads.
        #expect(torrent.readBlocksIfCached(requests, allocator: ByteBufferAllocator()) == nil)
        let results = torrent.readBlocks(requests, allocator: ByteBufferAllocator()).map { result in
            ReadOutcome { () throws(SeedTorrent.ReadError) in try result.get() }
        }
        #expect(results == [.changed("index.html"), .notServable, .notServable])
    }

    @Test func aTruncatedFileIsWithdrawnAndReportedOnce() throws {
        try truncate("index.html", to: 30_000)
        // Piece 0 is still all there and still hashes right; it is withdrawn all the same.
        #expect(gatewayRead("index.html", 0..<1000) == .changed("index.html"))
        #expect(peerRead(piece: 0) == .notServable)
        #expect(gatewayRead("index.html", 0..<1000) == .withdrawn("index.html"))
        #expect(torrent.changedFiles == ["index.html"])
    }

    @Test func aReadPastTheEndOfATruncatedFileIsAChangeNotADiskError() throws {
        try truncate("index.html", to: 10_000)
        #expect(peerRead(piece: 0) == .changed("index.html"))
        #expect(gatewayRead("index.html", 0..<40_000) == .withdrawn("index.html"))
        #expect(!servesPieces([0]) && servesPieces([3, 4]))
    }

    @Test func theGatewayFindingTheChangeReportsItAndPeersDoNot() throws {
        try append("other.bin", [1, 2, 3])
        #expect(gatewayRead("other.bin", 0..<20_000) == .changed("other.bin"))
        #expect(peerRead(piece: 3) == .notServable)
        #expect(gatewayRead("other.bin", 0..<10) == .withdrawn("other.bin"))
        #expect(gatewayRead("index.html", 0..<40_000) == .bytes(page))
    }

    /// Another file renamed over it (as editors and deploy tools save): the descriptor opened
    /// before still reads the old bytes, which would hash right, but the site is not that file.
    @Test func aFileRenamedOverIsWithdrawnThoughItsOldDescriptorStillReadsTheOldBytes() throws {
        #expect(peerRead(piece: 0) == .bytes(Array(page[0..<16_384])))  // the descriptor is open now
        var edited = page
        edited[30_000] ^= 0xff
        try Data(edited).write(to: URL(fileURLWithPath: path("index.html.new")))
        #expect(rename(path("index.html.new"), path("index.html")) == 0)
        #expect(peerRead(piece: 0) == .changed("index.html"))
        #expect(gatewayRead("index.html", 0..<100) == .withdrawn("index.html"))
    }

    @Test func aRemovedFileIsWithdrawn() throws {
        #expect(gatewayRead("other.bin", 0..<100) == .bytes(Array(other[0..<100])))
        try FileManager.default.removeItem(atPath: path("other.bin"))
        #expect(gatewayRead("other.bin", 0..<100) == .changed("other.bin"))
        #expect(peerRead(piece: 3) == .notServable)
        #expect(peerRead(piece: 0) == .bytes(Array(page[0..<16_384])))
    }

    /// The same size, other identity: served only as leaves that still hash to the file's
    /// tree (the bytes that go out are the ones hashed, so they are the verified ones); the
    /// first leaf that does not withdraws the file.
    @Test func aSameSizeRewriteIsServedOnlyWhereItsLeavesStillVerify() throws {
        try Data(page).write(to: URL(fileURLWithPath: path("index.html")))  // same bytes, new identity
        #expect(!torrent.isUnchanged(file: pageFile))
        #expect(peerRead(piece: 1) == .bytes(Array(page[16_384..<32_768])))
        #expect(gatewayRead("index.html", 0..<40_000) == .bytes(page))
        var edited = page
        edited[20_000] ^= 0xff  // piece 1
        try Data(edited).write(to: URL(fileURLWithPath: path("index.html")))
        #expect(peerRead(piece: 0) == .bytes(Array(page[0..<16_384])))  // its leaves still verify
        #expect(peerRead(piece: 1) == .changed("index.html"))
        #expect(gatewayRead("index.html", 0..<100) == .withdrawn("index.html"))
        #expect(!servesPieces([0, 1, 2]))
    }
}

/// A download's own writes make its files grow: reads of what it verified so far are served,
/// and the file is not taken for one appended to.
@Suite struct GrowingDownloadFileTests {
    @Test func aFileADownloadIsStillWritingIsNotWithdrawnAsItGrows() throws {
        let bytes = content(3, 50_000)  // pieces 0...3
        let source = try Fixture(files: ["big.bin": bytes])
        let m = source.metainfo
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("webseed-growing-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let torrent = SeedTorrent(metainfo: m, directory: dir.path, data: LocalData(downloaded: PieceSet(count: m.pieceCount), generations: [:]),
                                  writable: true)
        try torrent.reader.createFiles()
        let leaves = source.torrent.trees.values.first!.layers[0]
        func write(piece p: Int) {
            let start = p * 16_384
            let piece = Array(bytes[start..<min(bytes.count, start + 16_384)])
            piece.withUnsafeBytes { try? torrent.reader.write(offset: Int64(start), $0) }
            torrent.addLeaves(file: 0, first: p, [leaves[p]])
            torrent.wrote(file: 0, generation: torrent.reader.generation(ofTorrentFile: 0))
            torrent.addPiece(p)
        }
        write(piece: 0)
        write(piece: 1)
        let request = BlockRequest(piece: 0, begin: 0, length: 16_384)
        func read() -> ReadOutcome {
            ReadOutcome { () throws(SeedTorrent.ReadError) in try torrent.readBlock(request, allocator: ByteBufferAllocator()) }
        }
        #expect(read() == .bytes(Array(bytes[0..<16_384])))
        // The tail first: the file reaches its full size (it grows by the download's own write).
        let tail = Array(bytes[49_152...])
        tail.withUnsafeBytes { try? torrent.reader.write(offset: 49_152, $0) }
        #expect(read() == .bytes(Array(bytes[0..<16_384])))
        write(piece: 3)
        write(piece: 2)
        #expect(read() == .bytes(Array(bytes[0..<16_384])))
        #expect(torrent.changedFiles.isEmpty)
    }
}

/// A plain v1 torrent (pieces span files, no leaves): a file of another size is withdrawn
/// with every piece it shares.
@Suite struct V1ChangedFileTests {
    @Test func anAppendedFileOfAV1TorrentIsWithdrawn() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("webseed-v1-changed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = content(7, 40_000), b = content(8, 30_000)  // a: pieces 0...2, b: pieces 2...4
        try Data(a).write(to: dir.appendingPathComponent("a.bin"))
        try Data(b).write(to: dir.appendingPathComponent("b.bin"))
        let stream = a + b
        var pieces: [UInt8] = []
        for start in stride(from: 0, to: stream.count, by: 16_384) {
            pieces += Digests.sha1(Array(stream[start..<min(start + 16_384, stream.count)])).bytes
        }
        let sizes: [(String, Int64)] = [("a.bin", 40_000), ("b.bin", 30_000)]
        let files: [BValue] = sizes.map { name, length in
            .dictionary(BDictionary([("length", .integer(length)), ("path", .list([.string(name)]))]))
        }
        let info = BValue.dictionary(BDictionary([("name", .string("d")), ("piece length", .integer(16_384)), ("pieces", .bytes(pieces)),
                                                  ("files", .list(files))]))
        let metainfo = try Metainfo(bytes: BValue.dictionary(BDictionary([("info", info)])).encoded())
        let torrent = SeedTorrent(metainfo: metainfo, directory: dir.path, data: LocalDataVerifier.verify(metainfo, directory: dir.path, resumePath: nil))
        func read(_ piece: UInt32) -> ReadOutcome {
            ReadOutcome { () throws(SeedTorrent.ReadError) in
                try torrent.readBlock(BlockRequest(piece: piece, begin: 0, length: 1000), allocator: ByteBufferAllocator())
            }
        }
        let handle = try FileHandle(forWritingTo: dir.appendingPathComponent("b.bin"))
        try handle.seekToEnd()
        try handle.write(contentsOf: [1])
        try handle.close()
        #expect(read(0) == .bytes(Array(a[0..<1000])))
        #expect(read(3) == .changed("b.bin"))
        #expect(read(4) == .notServable && read(2) == .notServable)
        #expect(read(1) == .bytes(Array(a[16_384..<17_384])))
        #expect(torrent.changedFiles == ["b.bin"])
    }
}
