import Bencode
import Foundation
import Hashing
import Metainfo
import NIOCore
import Storage
import Testing
@testable import Swarm

/// A download makes a file when its first piece is written, not at the start: a gateway's
/// first byte must not wait for every file of a site to be created. At the end every file
/// exists with its full size, the empty ones included.
@Suite struct LazyFilesTests {
    private static func scratch() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("webseed-lazy-\(UUID().uuidString)").path
    }

    /// Everything under `dir`, relative, folders with a trailing slash.
    private static func tree(_ dir: String) -> [String] {
        guard let e = FileManager.default.enumerator(atPath: dir) else { return [] }
        var out: [String] = []
        while let p = e.nextObject() as? String {
            var isDir: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: dir + "/" + p, isDirectory: &isDir)
            out.append(isDir.boolValue ? p + "/" : p)
        }
        return out.sorted()
    }

    private static func piece(_ source: PieceReader, _ check: PieceCheck, _ p: Int) -> ByteBuffer {
        let (offset, length) = check.span(ofPiece: p)
        var bytes = [UInt8](repeating: 0, count: length)
        let ok: Bool = bytes.withUnsafeMutableBytes { raw in (try? source.read(offset: offset, into: raw)) != nil }
        #expect(ok, "piece \(p) of the source")
        return ByteBuffer(bytes: bytes)
    }

    private static func write(_ source: PieceReader, _ check: PieceCheck, _ reader: PieceReader, _ p: Int) throws {
        let written = FetchDisk.verifyAndWrite(check: check, reader: reader, piece: p, data: piece(source, check, p))
        guard case .ok = written else { Issue.record("piece \(p): \(written)"); return }
    }

    @Test func filesAreMadeWhenTheirFirstPieceIsWrittenAndAllExistAtTheEnd() throws {
        let f = try Fixture(files: ["index.html": content(1, 70_000), "css/site.css": content(2, 3_000),
                                    "img/deep/big.png": content(3, 50_000), "empty.txt": [], "docs/empty/none.txt": []])
        let m = f.metainfo
        let check = PieceCheck(metainfo: m)
        let work = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let out = work + "/out"
        let record = work + "/out.fetch"
        let reader = PieceReader(metainfo: m, directory: out, writable: true)

        let start = try FetchDisk.start(check: check, reader: reader, directory: out, recordPath: record, recheck: false)
        #expect(start.pieces.cardinality == 0 && start.rechecked == 0 && start.generations.isEmpty)
        #expect(Self.tree(out).isEmpty, "the start creates no file and no folder")

        // One piece of img/deep/big.png: that file (and its folders) only.
        let big = try #require(m.files.firstIndex { $0.pathString == "img/deep/big.png" })
        let first = Int(m.files[big].offset / Int64(m.pieceLength))
        try Self.write(f.torrent.reader, check, reader, first)
        #expect(Self.tree(out) == ["img/", "img/deep/", "img/deep/big.png"])

        for p in 0..<m.pieceCount where p != first { try Self.write(f.torrent.reader, check, reader, p) }
        #expect(!Self.tree(out).contains("empty.txt"), "an empty file has no piece to write")
        let finished = try FetchDisk.finish(check: check, reader: reader, directory: out, leaves: [:], known: [:], recordPath: record)
        #expect(finished.trees.count == 3)
        for file in m.files {
            let path = out + "/" + file.pathString
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.size] as? Int).map(Int64.init) == file.length, "\(file.pathString)")
            #expect(FileManager.default.contents(atPath: path).map { [UInt8]($0) } == f.bytes(file.pathString))
        }
        // The final record vouches for everything.
        let again = try FetchDisk.start(check: check, reader: PieceReader(metainfo: m, directory: out, writable: true),
                                        directory: out, recordPath: record, recheck: false)
        #expect(again.fromRecord == m.pieceCount && again.pieces.isFull && again.rechecked == 0)
    }

    @Test func anInterruptedDownloadIsCheckedFromTheFilesThatExist() throws {
        let f = try Fixture(files: ["a.bin": content(4, 40_000), "b/c.bin": content(5, 20_000), "d.bin": content(6, 9_000)])
        let m = f.metainfo
        let check = PieceCheck(metainfo: m)
        let work = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let out = work + "/out"
        let reader = PieceReader(metainfo: m, directory: out, writable: true)
        _ = try FetchDisk.start(check: check, reader: reader, directory: out, recordPath: work + "/none", recheck: false)
        let a = try #require(m.files.firstIndex { $0.pathString == "a.bin" })
        let aPieces = (0..<m.pieceCount).filter { check.file(ofPiece: $0) == a }
        #expect(aPieces.count == 3)
        // The first two pieces of a.bin: its last is missing, so the file is short.
        for p in aPieces.prefix(2) { try Self.write(f.torrent.reader, check, reader, p) }

        let start = try FetchDisk.start(check: check, reader: PieceReader(metainfo: m, directory: out, writable: true),
                                        directory: out, recordPath: work + "/none", recheck: false)
        #expect(start.rechecked == 2 && start.pieces.cardinality == 2)
        #expect(aPieces.prefix(2).allSatisfy { start.pieces.contains($0) })
        #expect(Array(start.generations.keys) == [a], "only a file that exists has a generation")
        #expect(Self.tree(out) == ["a.bin"], "the check made no file")
    }

    /// v1: pieces span files. A piece counts as possibly there only if every file under it
    /// is long enough; a file created by a later piece's write holds a hole, not data.
    @Test func aV1PieceAcrossTwoFilesIsFoundWhenBothHoldIt() throws {
        let a = content(7, 40_000), b = content(8, 30_000)
        let stream = a + b
        var pieces: [UInt8] = []
        var i = 0
        while i < stream.count { pieces += Digests.sha1(Array(stream[i..<min(i + 16_384, stream.count)])).bytes; i += 16_384 }
        let info = BValue.dictionary(BDictionary([
            ("name", .string("d")), ("piece length", .integer(16_384)), ("pieces", .bytes(pieces)),
            ("files", .list([
                .dictionary(BDictionary([("length", .integer(40_000)), ("path", .list([.string("a.bin")]))])),
                .dictionary(BDictionary([("length", .integer(30_000)), ("path", .list([.string("b.bin")]))])),
                .dictionary(BDictionary([("length", .integer(0)), ("path", .list([.string("e.txt")]))])),
            ])),
        ]))
        let m = try Metainfo(bytes: BValue.dictionary(BDictionary([("info", info)])).encoded())
        let check = PieceCheck(metainfo: m)
        let work = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let out = work + "/out"
        let reader = PieceReader(metainfo: m, directory: out, writable: true)
        _ = try FetchDisk.start(check: check, reader: reader, directory: out, recordPath: work + "/none", recheck: false)
        // Piece 2 is bytes 32,768..<49,152: the end of a.bin and the start of b.bin.
        let written = FetchDisk.verifyAndWrite(check: check, reader: reader, piece: 2,
                                               data: ByteBuffer(bytes: stream[32_768..<49_152]))
        guard case .ok = written else { Issue.record("\(written)"); return }
        #expect(Self.tree(out) == ["a.bin", "b.bin"])

        let start = try FetchDisk.start(check: check, reader: PieceReader(metainfo: m, directory: out, writable: true),
                                        directory: out, recordPath: work + "/none", recheck: false)
        #expect(start.rechecked == 1 && start.pieces.contains(2), "pieces 0 and 1 are a hole, 3 and 4 past b.bin's end")
        #expect(FetchDisk.coveredPieces(check: check, sizes: [0: 40_000, 1: 9_152]) == [0, 1, 2])
        #expect(FetchDisk.coveredPieces(check: check, sizes: [1: 30_000]) == [3, 4])
        #expect(FetchDisk.coveredPieces(check: check, sizes: [0: 40_000, 1: 9_151]) == [0, 1])
        #expect(FetchDisk.coveredPieces(check: check, sizes: [:]).isEmpty)
    }
}
