import Foundation
import Testing
import Hashing
import Metainfo
import Merkle
@testable import Storage

/// ../shared/vectors.json, copied to Tests/Fixtures: cases cross-checked against
/// libtorrent 2.1.1's creator. Each is rebuilt from files on disk through the real
/// hasher and builder, for both v2-only and hybrid torrents.
struct Vector: Decodable, Sendable, CustomTestStringConvertible {
    struct File: Decodable, Sendable { var path: String; var seed: String?; var length: Int }
    struct V2Only: Decodable, Sendable { var v2_infohash: String }
    struct Hybrid: Decodable, Sendable { var v1_infohash: String; var v2_infohash: String }
    var label: String
    var name: String
    var piece_length: Int
    var files: [File]
    var file_tree_order: [String]
    var pieces_roots: [String: String]
    var v2_only: V2Only
    var hybrid_tail_padded: Hybrid
    var testDescription: String { label }

    var isSingleFile: Bool { files.count == 1 && files[0].path == name }

    static let all: [Vector] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/vectors.json")
        return try! JSONDecoder().decode([Vector].self, from: Data(contentsOf: url))
    }()
}

/// `data(seed, n)`: the first n bytes of SHA256(seed+":0") ‖ SHA256(seed+":1") ‖ …
func vectorData(seed: String, length: Int) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(length + 32)
    var i = 0
    while out.count < length {
        out += Digests.sha256(Array("\(seed):\(i)".utf8)).bytes
        i += 1
    }
    return Array(out.prefix(length))
}

@Suite struct Vectors {
    @Test func allCasesArePresent() {
        #expect(Vector.all.count >= 8)
    }

    @Test(arguments: Vector.all)
    func reproducedFromFilesOnDisk(_ v: Vector) throws {
        let tmp = try TempDirectory()
        let dir = tmp.url.appendingPathComponent(v.name)
        for f in v.files { try tmp.write("\(v.name)/\(f.path)", vectorData(seed: f.seed ?? "", length: f.length)) }

        for hybrid in [false, true] {
            let m: Metainfo
            if v.isSingleFile {
                let file = SiteFile(path: [v.name], absolutePath: dir.path + "/" + v.name, size: Int64(v.files[0].length), modified: nil)
                var options = ContentHasher.Options(pieceLength: v.piece_length, hybrid: hybrid)
                options.singleFile = true
                let hashed = try ContentHasher.hash([file], options: options)
                m = try TorrentBuilder.build(name: v.name, pieceLength: v.piece_length, files: hashed, hybrid: hybrid, singleFile: true).metainfo
            } else {
                var request = TorrentCreator.Request(directory: dir.path)
                request.pieceLength = v.piece_length
                request.hybrid = hybrid
                let listing = try TorrentCreator.list(request)
                m = try TorrentCreator.create(request, listing: listing, write: false).metainfo
            }
            #expect(m.files.map(\.pathString) == v.file_tree_order)
            for f in m.files where f.length > 0 {
                #expect(f.piecesRoot?.hex == v.pieces_roots[f.pathString], "root of \(f.pathString)")
            }
            if hybrid {
                #expect(m.v2InfoHash?.hex == v.hybrid_tail_padded.v2_infohash, "hybrid v2 hash")
                #expect(m.v1InfoHash?.hex == v.hybrid_tail_padded.v1_infohash, "hybrid v1 hash")
            } else {
                #expect(m.v2InfoHash?.hex == v.v2_only.v2_infohash, "v2-only hash")
                #expect(m.v1InfoHash == nil)
            }
        }
    }

    @Test func hashingIsTheSameWithOneThreadOrMany() throws {
        let tmp = try TempDirectory()
        // Several units per file (4 MiB each) so threads really share one file.
        try tmp.write("site/big.bin", vectorData(seed: "big", length: 9 << 20 + 12_345))
        try tmp.write("site/small.txt", vectorData(seed: "small", length: 777))
        var hashes: [String] = []
        for threads in [1, 2, 4] {
            var request = TorrentCreator.Request(directory: tmp.path + "/site")
            request.threads = threads
            request.pieceLength = 1 << 20
            let listing = try TorrentCreator.list(request)
            hashes.append(try TorrentCreator.create(request, listing: listing, write: false).metainfo.v1InfoHash!.hex)
        }
        #expect(Set(hashes).count == 1)
    }

    /// Workers hash each unit's part of the Merkle tree and the layers above are joined
    /// afterwards: every layer must equal the tree hashed in one piece, for files of one
    /// unit, of several with a short last one, and with pieces longer than a unit.
    @Test(arguments: [1 << 20, 8 << 20])
    func treesHashedInPartsEqualTreesHashedWhole(pieceLength: Int) throws {
        let tmp = try TempDirectory()
        let sizes = [1, 16_384, 16_385, 4 << 20, (4 << 20) + 1, 9 << 20 + 12_345, 17 << 20 - 1]
        var files: [SiteFile] = []
        var whole: [MerkleTree] = []
        for (i, size) in sizes.enumerated() {
            // Every block distinct (file and block number in its first bytes), so a node
            // hashed into the wrong place changes the tree.
            var bytes = [UInt8](repeating: 0, count: size)
            for (n, start) in stride(from: 0, to: size, by: blockSize).enumerated() {
                for (k, byte) in "\(i):\(n)".utf8.enumerated() where start + k < size { bytes[start + k] = byte }
            }
            try tmp.write("f\(i)", bytes)
            files.append(SiteFile(path: ["f\(i)"], absolutePath: tmp.path + "/f\(i)", size: Int64(size), modified: nil))
            let leaves = stride(from: 0, to: size, by: blockSize).map { Digests.sha256(bytes[$0..<min($0 + blockSize, size)]) }
            whole.append(MerkleTree(leaves: leaves))
        }
        for threads in [1, 2] {
            var options = ContentHasher.Options(pieceLength: pieceLength, hybrid: false)
            options.threads = threads
            let hashed = try ContentHasher.hash(files, options: options)
            for (h, w) in zip(hashed, whole) {
                let same = h.tree?.layers == w.layers  // compared whole, reported short
                #expect(same, "layers of \(h.path[0]) (\(h.length) bytes), \(threads) thread(s)")
            }
        }
    }
}
