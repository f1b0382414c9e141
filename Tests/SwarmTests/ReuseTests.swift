import Foundation
import Hashing
import Metainfo
import NIOCore
import PeerWire
import Storage
import Testing
@testable import Swarm

/// `FetchOptions.reuse`: a file of the new torrent whose pieces root names a complete file
/// elsewhere on the host is linked from there, verified, and never asked of a peer; one
/// that does not verify is downloaded instead, and the file it was linked from is never
/// written to.
@Suite struct ReuseTests {
    private static func scratch() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("webseed-reuse-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    private static func put(_ bytes: [UInt8], at path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    private static func inode(_ path: String) throws -> Int? {
        try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? Int
    }

    private static func pieces(of path: String, _ m: Metainfo, _ check: PieceCheck) throws -> [Int] {
        let i = try #require(m.files.firstIndex { $0.pathString == path })
        return (0..<m.pieceCount).filter { check.file(ofPiece: $0) == i }
    }

    private static func root(_ path: String, _ m: Metainfo) throws -> SHA256Digest {
        try #require(m.files.first { $0.pathString == path }?.piecesRoot)
    }

    @Test func aFileWithAKnownRootIsLinkedVerifiedAndNeverRequested() throws {
        let f = try Fixture(files: ["big.bin": content(1, 70_000), "css/small.css": content(2, 3_000), "changed.txt": content(3, 5_000)])
        let m = f.metainfo
        let check = PieceCheck(metainfo: m)
        let work = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: work) }
        // The previous version holds big.bin and small.css under other names.
        try Self.put(content(1, 70_000), at: work + "/prev/old-big.bin")
        try Self.put(content(2, 3_000), at: work + "/prev/deep/old.css")
        let reuse = [try Self.root("big.bin", m): work + "/prev/old-big.bin", try Self.root("css/small.css", m): work + "/prev/deep/old.css",
                     Digests.sha256(Array("no such file".utf8)): work + "/prev/missing"]
        let out = work + "/out"
        let reader = PieceReader(metainfo: m, directory: out, writable: true)
        let start = try FetchDisk.start(check: check, reader: reader, directory: out, recordPath: work + "/none", recheck: false, reuse: reuse)

        #expect(start.reused == 2)
        let reused = try Self.pieces(of: "big.bin", m, check) + Self.pieces(of: "css/small.css", m, check)
        let changed = try Self.pieces(of: "changed.txt", m, check)
        #expect(reused.allSatisfy { start.pieces.contains($0) }, "every piece of the reused files verified")
        #expect(!changed.contains { start.pieces.contains($0) })
        #expect(try Self.inode(out + "/big.bin") == Self.inode(work + "/prev/old-big.bin"), "a hard link, not a copy")
        #expect(FileManager.default.contents(atPath: out + "/css/small.css").map { [UInt8]($0) } == content(2, 3_000))
        #expect(!FileManager.default.fileExists(atPath: out + "/changed.txt"), "nothing is made for a file that is not reused")
        let leaves = start.leaves.values.reduce(0) { $0 + $1.reduce(0) { $0 + $1.leaves.count } }
        #expect(leaves == (70_000 + 16_383) / 16_384 + 1, "the leaves of the reused files are known for their trees")

        // The download asks a seed only for the changed file's pieces, and counts nothing downloaded.
        let options = FetchOptions(directory: out, defaultParent: work, stateDirectory: work)
        var machine = FetchMachine(v1Hash: m.v1InfoHash, v2Hash: m.v2InfoHash, metainfo: m, options: options, now: 0)
        _ = machine.handle(.start, now: 0)
        _ = machine.handle(.checked(.success(start)), now: 0)
        let seed = ObjectIdentifier(reader)
        _ = machine.handle(.peerJoined(seed, FetchPeerInfo(address: "10.0.0.1:6881", host: "10.0.0.1", isV2: true, fast: true)), now: 0)
        let actions = machine.handle(.message(.haveAll, from: seed), now: 0) + machine.handle(.message(.unchoke, from: seed), now: 0)
        let asked = Set(actions.flatMap { a -> [Int] in
            guard case .send(let messages, _) = a else { return [] }
            return messages.compactMap { if case .request(let r) = $0 { Int(r.piece) } else { nil } }
        })
        #expect(asked == Set(changed), "only the changed file's pieces are requested")
        #expect(machine.progress.downloaded == 0)
    }

    @Test func aReusedFileThatDoesNotVerifyIsDownloadedAndItsSourceIsNeverWritten() throws {
        let f = try Fixture(files: ["big.bin": content(1, 70_000), "other.txt": content(4, 2_000)])
        let m = f.metainfo
        let check = PieceCheck(metainfo: m)
        let work = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: work) }
        var damaged = content(1, 70_000)
        damaged[50_000] ^= 0xff
        try Self.put(damaged, at: work + "/prev/big.bin")
        let reuse = [try Self.root("big.bin", m): work + "/prev/big.bin"]
        let out = work + "/out"
        let reader = PieceReader(metainfo: m, directory: out, writable: true)
        let start = try FetchDisk.start(check: check, reader: reader, directory: out, recordPath: work + "/none", recheck: false, reuse: reuse)

        #expect(start.reused == 0)
        #expect(start.pieces.cardinality == 0, "not even the pieces of it that match are taken")
        #expect(!FileManager.default.fileExists(atPath: out + "/big.bin"), "the link is undone before anything opens it")
        // Downloading writes a new file; the one it was linked from keeps its bytes.
        for p in try Self.pieces(of: "big.bin", m, check) {
            let (offset, length) = check.span(ofPiece: p)
            var bytes = [UInt8](repeating: 0, count: length)
            bytes.withUnsafeMutableBytes { try! f.torrent.reader.read(offset: offset, into: $0) }
            guard case .ok = FetchDisk.verifyAndWrite(check: check, reader: reader, piece: p, data: ByteBuffer(bytes: bytes)) else {
                Issue.record("piece \(p) did not write")
                continue
            }
        }
        #expect(FileManager.default.contents(atPath: out + "/big.bin").map { [UInt8]($0) } == content(1, 70_000))
        #expect(FileManager.default.contents(atPath: work + "/prev/big.bin").map { [UInt8]($0) } == damaged)
        #expect(try Self.inode(out + "/big.bin") != Self.inode(work + "/prev/big.bin"))
    }

    @Test func aFileAlreadyInTheDirectoryIsNotReplacedByAReusedOne() throws {
        let f = try Fixture(files: ["a.txt": content(5, 9_000)])
        let m = f.metainfo
        let work = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: work) }
        try Self.put(content(5, 9_000), at: work + "/prev/a.txt")
        try Self.put(content(5, 9_000), at: work + "/out/a.txt")
        let before = try Self.inode(work + "/out/a.txt")
        let reader = PieceReader(metainfo: m, directory: work + "/out", writable: true)
        let start = try FetchDisk.start(check: PieceCheck(metainfo: m), reader: reader, directory: work + "/out", recordPath: work + "/none",
                                        recheck: false, reuse: [try Self.root("a.txt", m): work + "/prev/a.txt"])
        #expect(start.reused == 0 && start.pieces.isFull, "what is there is hashed, as always")
        #expect(try Self.inode(work + "/out/a.txt") == before)
    }
}
