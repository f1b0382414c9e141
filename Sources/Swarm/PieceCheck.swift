import Hashing
import Merkle
import Metainfo
import PeerWire

/// What a downloaded piece must hash to, and the check. In a v2 or hybrid torrent a piece
/// lies in one file: its 16 KiB leaves must fold to the file's piece-layer hash (or, for a
/// file of one piece, to its pieces root); in a hybrid its SHA-1 over the padded piece must
/// match too. In a v1 torrent only the SHA-1 exists.
public struct PieceCheck: Sendable {
    public let metainfo: Metainfo
    /// Piece layers of files longer than one piece (from the torrent or from hash requests).
    public var layers: [SHA256Digest: [SHA256Digest]]
    /// v2: the file (index into `metainfo.files`) each piece belongs to.
    let pieceFile: [Int32]
    let v1Total: Int64

    public init(metainfo m: Metainfo) {
        metainfo = m
        layers = m.pieceLayers
        var owner = [Int32](repeating: -1, count: m.version.hasV2 ? m.pieceCount : 0)
        if m.version.hasV2 {
            let pl = Int64(m.pieceLength)
            for (i, f) in m.files.enumerated() where f.length > 0 && !f.isSymlink {
                let first = Int(f.offset / pl)
                for p in first..<(first + Int((f.length + pl - 1) / pl)) { owner[p] = Int32(i) }
            }
        }
        pieceFile = owner
        v1Total = m.v1Entries.last.map { $0.offset + $0.length } ?? 0
    }

    /// Files longer than one piece whose piece layer is still unknown.
    public var missingLayers: [Int] {
        guard metainfo.version.hasV2 else { return [] }
        return metainfo.files.indices.filter { i in
            let f = metainfo.files[i]
            return f.length > Int64(metainfo.pieceLength) && f.piecesRoot.map { layers[$0] == nil } ?? false
        }
    }

    /// Whether the piece layer of `file` is needed and still unknown (v2 files longer than a piece).
    public func lacksLayer(file: Int) -> Bool {
        guard metainfo.version.hasV2, file >= 0, file < metainfo.files.count else { return false }
        let f = metainfo.files[file]
        return f.length > Int64(metainfo.pieceLength) && f.piecesRoot.map { layers[$0] == nil } ?? false
    }

    /// Whether piece `p` can be verified now: in v2, unless its file's piece layer is unknown.
    public func canCheck(piece p: Int) -> Bool {
        guard let f = file(ofPiece: p) else { return true }
        return !lacksLayer(file: f)
    }

    /// The pieces that hold `file` (v2 and hybrid: a file starts at a piece boundary).
    public func pieces(ofFile file: Int) -> Range<Int> {
        let f = metainfo.files[file]
        guard f.length > 0 else { return 0..<0 }
        let pl = Int64(metainfo.pieceLength)
        return Int(f.offset / pl)..<Int((f.offset + f.length + pl - 1) / pl)
    }

    /// The file piece `p` belongs to (v2 and hybrid).
    public func file(ofPiece p: Int) -> Int? {
        guard p >= 0, p < pieceFile.count, pieceFile[p] >= 0 else { return nil }
        return Int(pieceFile[p])
    }

    /// The bytes of piece `p` that come from peers: in v2 the file's part of the piece (the
    /// rest is padding, known to be zeros); in v1 the whole piece.
    public func span(ofPiece p: Int) -> (offset: Int64, length: Int) {
        let start = Int64(p) * Int64(metainfo.pieceLength)
        if metainfo.version.hasV2, let f = file(ofPiece: p) {
            let file = metainfo.files[f]
            return (start, Int(min(Int64(metainfo.pieceLength), file.offset + file.length - start)))
        }
        return (start, Int(min(Int64(metainfo.pieceLength), v1Total - start)))
    }

    public enum Outcome: Equatable {
        /// The piece verified; for v2 the leaf hashes of its data (to build the file's tree).
        case verified(leaves: [SHA256Digest])
        case mismatch(String)
    }

    /// Checks `data` (exactly `span(ofPiece:)` bytes) for piece `p`.
    public func check(piece p: Int, data: UnsafeRawBufferPointer) -> Outcome {
        let (start, length) = span(ofPiece: p)
        guard data.count == length else { return .mismatch("piece \(p) has \(data.count) bytes, expected \(length)") }
        var leaves: [SHA256Digest] = []
        if metainfo.version.hasV2 {
            guard let fi = file(ofPiece: p), let root = metainfo.files[fi].piecesRoot else { return .mismatch("piece \(p) is in no file") }
            let f = metainfo.files[fi]
            let h = SHA256Hasher()
            leaves.reserveCapacity((length + blockSize - 1) / blockSize)
            var at = 0
            while at < length {
                let n = min(blockSize, length - at)
                leaves.append(h.hash(UnsafeRawBufferPointer(rebasing: data[at..<(at + n)])))
                at += n
            }
            if f.length > Int64(metainfo.pieceLength) {
                guard let layer = layers[root] else { return .mismatch("the piece layer of \(f.pathString) is not known yet") }
                let bpp = metainfo.pieceLength / blockSize
                var padded = leaves
                padded += [SHA256Digest](repeating: .zero, count: bpp - leaves.count)
                let index = Int((start - f.offset) / Int64(metainfo.pieceLength))
                guard MerkleTree.root(ofLayer: padded, height: 0) == layer[index] else {
                    return .mismatch("piece \(p) (\(f.pathString)) does not match its piece hash")
                }
            } else if MerkleTree.root(ofLayer: leaves, height: 0) != root {
                return .mismatch("piece \(p) (\(f.pathString)) does not match the file's pieces root")
            }
        }
        if metainfo.version.hasV1 {
            let v1Length = Int(min(Int64(metainfo.pieceLength), v1Total - start))
            let h = SHA1Hasher()
            h.update(data)
            if v1Length > length {
                let zeros = [UInt8](repeating: 0, count: v1Length - length)
                h.update(zeros)
            }
            guard p < metainfo.v1PieceHashes.count, h.finish() == metainfo.v1PieceHashes[p] else {
                return .mismatch("piece \(p) does not match its SHA-1")
            }
        }
        return .verified(leaves: leaves)
    }

    /// Accepts a peer's answer to a piece-layer hash request for file `file`: the base
    /// hashes must prove out to the pieces root; the real ones are stored. False means the
    /// peer sent wrong hashes.
    public mutating func accept(hashes: [SHA256Digest], for request: HashRequest, file: Int) -> Bool {
        let f = metainfo.files[file]
        guard let root = f.piecesRoot, root == request.piecesRoot, f.length > Int64(metainfo.pieceLength) else { return false }
        let length = Int(request.length)
        guard hashes.count >= length else { return false }
        let base = Array(hashes[..<length])
        let uncles = Array(hashes[length...])
        guard MerkleTree.root(provedBy: base, baseLayer: Int(request.baseLayer), index: Int(request.index), uncles: uncles) == root else { return false }
        let pieces = Int((f.length + Int64(metainfo.pieceLength) - 1) / Int64(metainfo.pieceLength))
        let index = Int(request.index)
        guard layers[root] == nil, index < pieces else { return true }  // already known: nothing to add
        var chunks = pendingChunks[root] ?? [:]
        chunks[index] = Array(base.prefix(min(length, pieces - index)))
        let expected = (pieces + length - 1) / length
        if chunks.count == expected, chunks.keys.allSatisfy({ $0 % length == 0 }) {
            layers[root] = chunks.keys.sorted().flatMap { chunks[$0]! }
            pendingChunks[root] = nil
        } else {
            pendingChunks[root] = chunks
        }
        return true
    }

    /// Proven runs of piece layers still being assembled (root → first index → hashes).
    var pendingChunks: [SHA256Digest: [Int: [SHA256Digest]]] = [:]

    /// The hash requests that fetch the piece layer of `file`: runs of at most 512 hashes,
    /// each with the uncles that prove it up to the pieces root.
    public func layerRequests(file: Int) -> [HashRequest] {
        let f = metainfo.files[file]
        guard let root = f.piecesRoot else { return [] }
        let blocks = Int((f.length + Int64(blockSize) - 1) / Int64(blockSize))
        let height = MerkleTree.log2(MerkleTree.width(leafCount: blocks))
        let base = MerkleTree.log2(metainfo.pieceLength / blockSize)
        guard height > base else { return [] }
        let width = 1 << (height - base)
        let pieces = Int((f.length + Int64(metainfo.pieceLength) - 1) / Int64(metainfo.pieceLength))
        let run = min(512, width)
        return stride(from: 0, to: pieces, by: run).map { index in
            HashRequest(piecesRoot: root, baseLayer: UInt32(base), index: UInt32(index), length: UInt32(run), proofLayers: UInt32(height - base - 1))
        }
    }
}
