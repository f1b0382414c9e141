import Bencode
#if canImport(Glibc)
import Glibc
#endif
import Hashing
import Merkle

/// A file whose content has been hashed, ready to go into a torrent.
public struct HashedFile: Sendable {
    public var path: [String]
    public var length: Int64
    /// The file's Merkle tree; nil exactly when the file is empty.
    public var tree: MerkleTree?
    /// Hybrid torrents: SHA-1 of each of the file's pieces. The last piece is zero-padded
    /// to a full piece in multi-file torrents (pad files follow it) and hashed at its
    /// real length in single-file ones.
    public var v1PieceHashes: [SHA1Digest]

    public init(path: [String], length: Int64, tree: MerkleTree?, v1PieceHashes: [SHA1Digest] = []) {
        self.path = path
        self.length = length
        self.tree = tree
        self.v1PieceHashes = v1PieceHashes
    }
}

/// Fields outside the info dict (they do not change the info hash) plus `private`.
public struct TorrentOptions: Sendable {
    public var trackers: [String] = []
    public var webSeeds: [String] = []
    public var comment: String?
    public var isPrivate = false
    public var creationDate: Int64?
    public var createdBy: String?
    public init() {}
}

/// Builds canonical BEP 52 torrents, v2-only or hybrid (BEP 47 pads, v1 `files` in
/// file-tree order, tail padding). The info dict holds only what defines the content,
/// so the same files always give the same info hash.
public enum TorrentBuilder {
    public static func build(name: String, pieceLength: Int, files unsorted: [HashedFile], hybrid: Bool,
                             singleFile: Bool = false, options: TorrentOptions = TorrentOptions()) throws(MetainfoError) -> (bytes: [UInt8], metainfo: Metainfo) {
        guard pieceLength >= blockSize, pieceLength & (pieceLength - 1) == 0 else {
            throw .invalidPieceLength(Int64(pieceLength), reason: "v2 needs a power of two of at least 16 KiB")
        }
        guard !unsorted.isEmpty else { throw .noFiles }
        guard unsorted.contains(where: { $0.length > 0 }) else { throw .emptyTorrent }
        guard case .ok = PathRules.check(Array(name.utf8)) else { throw .invalidPathComponent(path: name, reason: "not a plain name") }
        // A name a reader would sanitize would be saved under another name than published.
        for f in unsorted {
            for c in f.path {
                guard case .ok = PathRules.check(Array(c.utf8)) else {
                    throw .invalidPathComponent(path: f.path.joined(separator: "/"), reason: "\(c.debugDescription) holds a control or direction character, NUL, '/' or '\\'")
                }
            }
        }
        // Listings usually arrive in tree order already; checking is linear, sorting is not.
        let inOrder = zip(unsorted, unsorted.dropFirst()).allSatisfy { treeOrder($0.path, $1.path) }
        let files = inOrder ? unsorted : unsorted.sorted { treeOrder($0.path, $1.path) }
        if singleFile { precondition(files.count == 1 && files[0].path == [name], "a single-file torrent's one file is named like the torrent") }
        // Names are compared as bytes everywhere; two that differ only in Unicode
        // normalization (NFC/NFD) are distinct on Linux but one file on macOS and Windows,
        // so they are refused rather than published.
        for i in files.indices.dropFirst() {
            let (a, b) = (files[i - 1].path, files[i].path)
            if a.count == b.count && zip(a, b).allSatisfy({ $0 == $1 }) { throw .duplicatePath(b.joined(separator: "/")) }
        }

        // The model, laid out as BEP 52 says: every non-empty file starts a piece.
        let pl = Int64(pieceLength)
        var model: [TorrentFile] = []
        var v1Entries: [V1Entry] = []
        var v1Hashes: [SHA1Digest] = []
        var layers: [SHA256Digest: [SHA256Digest]] = [:]
        var offset: Int64 = 0
        for f in files {
            model.append(TorrentFile(path: f.path, length: f.length, piecesRoot: f.tree?.root, offset: offset))
            if let t = f.tree, let layer = t.pieceLayer(pieceLength: pieceLength) { layers[t.root] = layer }
            if hybrid {
                precondition(f.v1PieceHashes.count == Int((f.length + pl - 1) / pl), "v1 piece hashes missing for \(f.path)")
                v1Hashes += f.v1PieceHashes
                v1Entries.append(V1Entry(path: f.path, length: f.length, isPad: false, offset: offset))
                let tail = f.length % pl
                if !singleFile && tail != 0 {
                    v1Entries.append(V1Entry(path: [".pad", String(pl - tail)], length: pl - tail, isPad: true, offset: offset + f.length))
                }
            }
            offset += (f.length + pl - 1) / pl * pl
        }

        var writer = InfoWriter()
        writer.info(name: name, pieceLength: pieceLength, files: files, hybrid: hybrid, singleFile: singleFile,
                    v1Entries: v1Entries, v1Hashes: v1Hashes, isPrivate: options.isPrivate)
        let infoBytes = writer.out

        var top = BDictionary()
        var layersDict = BDictionary()
        for (root, layer) in layers {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(layer.count * 32)
            for h in layer { bytes.append(contentsOf: h.bytes) }
            layersDict[root.bytes] = .bytes(bytes)
        }
        top["piece layers"] = .dictionary(layersDict)
        if let first = options.trackers.first {
            top["announce"] = .string(first)
            if options.trackers.count > 1 { top["announce-list"] = .list(options.trackers.map { .list([.string($0)]) }) }
        }
        if !options.webSeeds.isEmpty {
            top["url-list"] = options.webSeeds.count == 1 ? .string(options.webSeeds[0]) : .list(options.webSeeds.map(BValue.string))
        }
        if let c = options.comment { top["comment"] = .string(c) }
        if let by = options.createdBy { top["created by"] = .string(by) }
        if let d = options.creationDate { top["creation date"] = .integer(d) }
        let bytes = InfoWriter.topLevel(top, info: infoBytes)

        let metainfo = Metainfo(
            name: name, pieceLength: pieceLength, version: hybrid ? .hybrid : .v2, isSingleFile: singleFile, files: model,
            v1Entries: v1Entries, v1PieceHashes: v1Hashes, pieceLayers: layers, isPrivate: options.isPrivate,
            trackers: options.trackers.map { [$0] }, webSeeds: options.webSeeds, comment: options.comment,
            createdBy: options.createdBy, creationDate: options.creationDate, infoBytes: infoBytes,
            v2InfoHash: Digests.sha256(infoBytes), v1InfoHash: hybrid ? Digests.sha1(infoBytes) : nil,
            pieceCount: Int(offset / pl), sanitizedPaths: [])
        // Debug builds (and so every test run) read the output back with the strict parser.
        assert(Self.roundTrips(bytes, metainfo), "TorrentBuilder wrote a torrent its own parser reads differently")
        return (bytes, metainfo)
    }

    private static func roundTrips(_ bytes: [UInt8], _ m: Metainfo) -> Bool {
        guard let p = try? Metainfo(bytes: bytes) else { return false }
        return p.files == m.files && p.v1Entries == m.v1Entries && p.v1PieceHashes == m.v1PieceHashes
            && p.pieceLayers == m.pieceLayers && p.infoBytes == m.infoBytes && p.pieceCount == m.pieceCount
            && p.v2InfoHash == m.v2InfoHash && p.v1InfoHash == m.v1InfoHash && p.trackers == m.trackers && p.webSeeds == m.webSeeds
    }

    /// File-tree order: depth-first with keys sorted by raw bytes at each level, which is
    /// the same as comparing paths component by component.
    public static func treeOrder(_ a: [String], _ b: [String]) -> Bool {
        for (x, y) in zip(a, b) {
            let c = compareBytes(x, y)
            if c != 0 { return c < 0 }
        }
        return a.count < b.count
    }

    /// memcmp order of two strings' UTF-8 bytes (native strings are contiguous; others are
    /// compared through their UTF-8 view).
    static func compareBytes(_ x: String, _ y: String) -> Int {
        var x = x, y = y
        return x.withUTF8 { xb in
            y.withUTF8 { yb in
                let n = min(xb.count, yb.count)
                let c = n == 0 ? 0 : Int(memcmp(xb.baseAddress!, yb.baseAddress!, n))
                return c != 0 ? c : xb.count - yb.count
            }
        }
    }
}

/// Chooses a piece length for a web bundle.
public enum PieceLengthRule {
    public static let minimum = 16 << 10
    public static let maximum = 16 << 20

    /// The smallest power of two from 16 KiB to 16 MiB that keeps the piece count at or
    /// below max(1500, 2 × non-empty files). Web bundles are mostly small files, and in
    /// a v2 torrent every file starts a new piece, so small pieces waste little padding
    /// and let a gateway verify and serve a file as soon as its own blocks arrive; the
    /// cap keeps the v1 `pieces` field and piece layers (20 and 32 bytes a piece) small
    /// for large files.
    public static func automatic(fileLengths: [Int64]) -> Int {
        let nonEmpty = fileLengths.filter { $0 > 0 }
        let cap = Int64(max(1500, 2 * nonEmpty.count))
        var pl = Int64(minimum)
        while pl < Int64(maximum) {
            let pieces = nonEmpty.reduce(Int64(0)) { $0 + ($1 + pl - 1) / pl }
            if pieces <= cap { break }
            pl *= 2
        }
        return Int(pl)
    }
}
