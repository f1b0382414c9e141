import Bencode
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
        let files = unsorted.sorted { treeOrder($0.path, $1.path) }
        if singleFile { precondition(files.count == 1 && files[0].path == [name], "a single-file torrent's one file is named like the torrent") }

        var info = BDictionary()
        info["meta version"] = .integer(2)
        info["name"] = .string(name)
        info["piece length"] = .integer(Int64(pieceLength))
        info["file tree"] = .dictionary(tree(files[...], depth: 0))
        if options.isPrivate { info["private"] = .integer(1) }

        if hybrid {
            var pieces: [UInt8] = []
            var list: [BValue] = []
            let pl = Int64(pieceLength)
            for f in files {
                precondition(f.v1PieceHashes.count == Int((f.length + pl - 1) / pl), "v1 piece hashes missing for \(f.path)")
                for h in f.v1PieceHashes { pieces.append(contentsOf: h.bytes) }
                list.append(.dictionary(BDictionary([("length", .integer(f.length)), ("path", .list(f.path.map(BValue.string)))])))
                let tail = f.length % pl
                if !singleFile && tail != 0 {
                    let pad = pl - tail
                    list.append(.dictionary(BDictionary([
                        ("attr", .string("p")), ("length", .integer(pad)),
                        ("path", .list([.string(".pad"), .string(String(pad))])),
                    ])))
                }
            }
            if singleFile { info["length"] = .integer(files[0].length) } else { info["files"] = .list(list) }
            info["pieces"] = .bytes(pieces)
        }

        var top = BDictionary()
        top["info"] = .dictionary(info)
        var layers = BDictionary()
        for f in files {
            guard let t = f.tree, let layer = t.pieceLayer(pieceLength: pieceLength) else { continue }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(layer.count * 32)
            for h in layer { bytes.append(contentsOf: h.bytes) }
            layers[t.root.bytes] = .bytes(bytes)
        }
        top["piece layers"] = .dictionary(layers)
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

        let bytes = BValue.dictionary(top).encoded()
        // Read back with the strict parser: what we write must pass our own validation.
        return (bytes, try Metainfo(bytes: bytes))
    }

    /// File-tree order: depth-first with keys sorted by raw bytes at each level, which is
    /// the same as comparing paths component by component.
    public static func treeOrder(_ a: [String], _ b: [String]) -> Bool {
        for (x, y) in zip(a, b) where x != y {
            return x.utf8.lexicographicallyPrecedes(y.utf8)
        }
        return a.count < b.count
    }

    private static func tree(_ files: ArraySlice<HashedFile>, depth: Int) -> BDictionary {
        var dir = BDictionary()
        var i = files.startIndex
        while i < files.endIndex {
            let key = files[i].path[depth]
            var j = i
            while j < files.endIndex && files[j].path[depth] == key { j += 1 }
            if files[i].path.count == depth + 1 {
                let f = files[i]
                var props = BDictionary()
                props["length"] = .integer(f.length)
                if let t = f.tree { props["pieces root"] = .bytes(t.root.bytes) }
                dir[key] = .dictionary(BDictionary([("", .dictionary(props))]))
            } else {
                dir[key] = .dictionary(tree(files[i..<j], depth: depth + 1))
            }
            i = j
        }
        return dir
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
