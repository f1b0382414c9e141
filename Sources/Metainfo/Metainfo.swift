import Bencode
import Hashing
import Merkle

/// A validated torrent. Built only by `Metainfo(bytes:)` (a strict parser that checks
/// everything BEP 3, 47 and 52 require) or by `TorrentBuilder`, so holding one means the
/// file tree, piece layers and v1/v2 views are known to be consistent.
public struct Metainfo: Sendable {
    public var name: String
    public var pieceLength: Int
    public var version: TorrentVersion
    /// v1 single-file form (`length` in info) or a v2 tree with one file named like the torrent.
    public var isSingleFile: Bool
    /// Real files (no pads) in torrent order, empty files included.
    public var files: [TorrentFile]
    /// The v1 `files` list with pads and offsets (v1 and hybrid torrents).
    public var v1Entries: [V1Entry]
    public var v1PieceHashes: [SHA1Digest]
    /// Piece layers present in the torrent, each verified against its root.
    public var pieceLayers: [SHA256Digest: [SHA256Digest]]
    public var isPrivate: Bool
    public var trackers: [[String]]
    public var webSeeds: [String]
    public var comment: String?
    public var createdBy: String?
    public var creationDate: Int64?
    /// The info dict exactly as it appears in the torrent; both info hashes are over these bytes.
    public var infoBytes: [UInt8]
    public var v2InfoHash: SHA256Digest?
    public var v1InfoHash: SHA1Digest?
    public var pieceCount: Int
    /// Paths that had to be sanitized to be safe on disk (each named once, as read).
    public var sanitizedPaths: [String]

    public var totalSize: Int64 { files.reduce(0) { $0 + $1.length } }

    /// 20-byte hash used on the wire: the truncated v2 hash, or the v1 hash for v1 torrents.
    public var shortHashes: [[UInt8]] {
        var out: [[UInt8]] = []
        if let v2 = v2InfoHash { out.append(Array(v2.bytes.prefix(20))) }
        if let v1 = v1InfoHash { out.append(v1.bytes) }
        return out
    }

    public var siteID: String? { v2InfoHash.map(SiteID.encode) }
}

extension Metainfo {
    public init(bytes: [UInt8], limits: MetainfoLimits = .standard) throws(MetainfoError) {
        let top: BDictionary
        let spans: [[UInt8]: Range<Int>]
        do {
            (top, spans) = try BencodeDecoder.decodeTopLevelDictionary(bytes, allowTrailingData: true)
        } catch {
            if case .unexpectedByte(offset: 0, _) = error { throw .notADictionary }
            // Unsorted keys are tolerated in v1 torrents only (as libtorrent does): a v2
            // info dict must be canonical, since its hash must be reproducible.
            guard case .unsortedKeys = error,
                  let lenient = try? BencodeDecoder.decodeTopLevelDictionary(bytes, requireSortedKeys: false, allowTrailingData: true),
                  lenient.0["info"]?.dictionary?["meta version"] == nil
            else { throw .bencoding(error) }
            (top, spans) = lenient
        }
        guard let infoValue = top["info"] else { throw .missingKey("info") }
        guard let info = infoValue.dictionary else { throw .wrongType(key: "info", expected: "dictionary", actual: infoValue.typeName) }
        let infoBytes = Array(bytes[spans[Array("info".utf8)]!])

        var parser = InfoParser(info: info, limits: limits, fallbackName: HexCoding.encode(Digests.sha1(infoBytes).bytes))
        let parsed = try parser.parse()

        self.name = parsed.name
        self.pieceLength = parsed.pieceLength
        self.version = parsed.version
        self.isSingleFile = parsed.isSingleFile
        self.files = parsed.files
        self.v1Entries = parsed.v1Entries
        self.v1PieceHashes = parsed.v1PieceHashes
        self.pieceCount = parsed.pieceCount
        self.isPrivate = parsed.isPrivate
        self.sanitizedPaths = parser.sanitized
        self.infoBytes = infoBytes
        self.v2InfoHash = version.hasV2 ? Digests.sha256(infoBytes) : nil
        self.v1InfoHash = version.hasV1 ? Digests.sha1(infoBytes) : nil
        self.pieceLayers = [:]
        self.trackers = []
        self.webSeeds = []

        if version.hasV2, let layersValue = top["piece layers"] {
            guard let layers = layersValue.dictionary else {
                throw .wrongType(key: "piece layers", expected: "dictionary", actual: layersValue.typeName)
            }
            self.pieceLayers = try Metainfo.verifiedPieceLayers(layers, files: files, pieceLength: pieceLength)
        }

        // Outside `info`: informative fields. A wrong type here is still an error: a
        // torrent that says something malformed should not be half-believed.
        if let announce = top["announce"] {
            guard let url = announce.utf8String else { throw .wrongType(key: "announce", expected: "UTF-8 string", actual: announce.typeName) }
            if !url.isEmpty { trackers = [[url]] }
        }
        if let list = top["announce-list"] {
            guard let tiers = list.list else { throw .wrongType(key: "announce-list", expected: "list", actual: list.typeName) }
            var parsedTiers: [[String]] = []
            for tier in tiers {
                guard let urls = tier.list else { throw .wrongType(key: "announce-list tier", expected: "list", actual: tier.typeName) }
                let strings = urls.compactMap(\.utf8String).filter { !$0.isEmpty }
                if !strings.isEmpty { parsedTiers.append(strings) }
            }
            if !parsedTiers.isEmpty { trackers = parsedTiers }  // BEP 12: announce-list wins
        }
        if let urlList = top["url-list"] {
            switch urlList {
            case .bytes: webSeeds = [urlList.utf8String].compactMap { $0 }.filter { !$0.isEmpty }
            case .list(let l): webSeeds = l.compactMap(\.utf8String).filter { !$0.isEmpty }
            default: throw .wrongType(key: "url-list", expected: "string or list", actual: urlList.typeName)
            }
        }
        comment = top["comment"]?.utf8String
        createdBy = top["created by"]?.utf8String
        creationDate = top["creation date"]?.integer
    }

    /// Checks every `piece layers` entry: known root, right size, hashes to the root.
    static func verifiedPieceLayers(_ layers: BDictionary, files: [TorrentFile], pieceLength: Int) throws(MetainfoError) -> [SHA256Digest: [SHA256Digest]] {
        var byRoot: [SHA256Digest: TorrentFile] = [:]
        for f in files { if let r = f.piecesRoot { byRoot[r] = f } }
        let pieceHeight = MerkleTree.log2(pieceLength / blockSize)
        var out: [SHA256Digest: [SHA256Digest]] = [:]
        for entry in layers.entries {
            guard let root = SHA256Digest(bytes: entry.key), let file = byRoot[root] else {
                throw .pieceLayerUnknownRoot(HexCoding.encode(entry.key))
            }
            guard let data = entry.value.bytes else {
                throw .wrongType(key: "piece layers", expected: "string", actual: entry.value.typeName)
            }
            let pieces = Int((file.length + Int64(pieceLength) - 1) / Int64(pieceLength))
            // A file of one piece or less has no layer: its root is its only piece hash.
            let expected = pieces > 1 ? pieces * 32 : 0
            guard data.count == expected else {
                throw .pieceLayerWrongSize(path: file.pathString, expected: expected, actual: data.count)
            }
            var hashes: [SHA256Digest] = []
            hashes.reserveCapacity(pieces)
            for i in 0..<pieces { hashes.append(SHA256Digest(bytes: data[(i * 32)..<(i * 32 + 32)])!) }
            guard MerkleTree.root(ofLayer: hashes, height: pieceHeight) == root else {
                throw .pieceLayerMismatch(path: file.pathString)
            }
            out[root] = hashes
        }
        return out
    }
}
