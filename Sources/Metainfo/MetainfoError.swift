import Bencode

/// Everything that can be wrong with a torrent, with the facts needed to say so in one line.
public enum MetainfoError: Error, Equatable, Sendable, CustomStringConvertible {
    case bencoding(BencodeError)
    case notADictionary
    case missingKey(String)
    case wrongType(key: String, expected: String, actual: String)
    case unknownVersion(Int64)
    case invalidPieceLength(Int64, reason: String)
    case emptyName
    case emptyTorrent
    case fileTreeWithoutMetaVersion
    case invalidPathComponent(path: String, reason: String)
    case fileTreeRootIsFile
    case fileAndDirectory(path: String)
    case emptyDirectory(path: String)
    case noFiles
    case tooManyFiles(limit: Int)
    case invalidFileLength(path: String, length: Int64)
    case totalSizeTooLarge(Int64, limit: Int64)
    case tooManyPieces(Int64, limit: Int64)
    case padFileInFileTree(path: String)
    case missingPiecesRoot(path: String)
    case invalidPiecesRoot(path: String, reason: String)
    case invalidSymlink(path: String, reason: String)
    case duplicatePath(String)
    case pieceLayerUnknownRoot(String)
    case pieceLayerWrongSize(path: String, expected: Int, actual: Int)
    case pieceLayerMismatch(path: String)
    case piecesFieldWrongSize(expected: Int, actual: Int)
    case hybridMismatch(String)
    case misalignedFile(path: String)

    /// One line, escaped: names and paths inside come from the torrent.
    public var description: String { Printable.escaped(text) }

    private var text: String {
        switch self {
        case .bencoding(let e): "not valid bencoding: \(e)"
        case .notADictionary: "a torrent must be a bencoded dictionary"
        case .missingKey(let k): "the torrent has no '\(k)'"
        case .wrongType(let k, let expected, let actual): "'\(k)' should be a \(expected), but is a \(actual)"
        case .unknownVersion(let v): "unsupported 'meta version' \(v) (webseed reads versions 1 and 2)"
        case .invalidPieceLength(let v, let reason): "invalid piece length \(v): \(reason)"
        case .emptyName: "the torrent's name (its only file's name) is empty once unsafe characters are removed"
        case .emptyTorrent: "the torrent's files add up to 0 bytes: there is nothing to share"
        case .fileTreeWithoutMetaVersion: "the torrent has a 'file tree' but no 'meta version' 2"
        case .invalidPathComponent(let p, let reason): "unsafe file path '\(p)': \(reason)"
        case .fileTreeRootIsFile: "the root of 'file tree' is a file, not a directory"
        case .fileAndDirectory(let p): "'\(p)' is both a file and a directory in 'file tree'"
        case .emptyDirectory(let p): "'\(p)' in 'file tree' is neither a file nor a directory with files"
        case .noFiles: "the torrent lists no files"
        case .tooManyFiles(let limit): "the torrent lists more than \(limit) files"
        case .invalidFileLength(let p, let n): "file '\(p)' has an invalid length \(n)"
        case .totalSizeTooLarge(let n, let limit): "the torrent's files add up to \(n) bytes, more than the \(limit)-byte limit"
        case .tooManyPieces(let n, let limit): "the torrent has \(n) pieces, more than the limit of \(limit)"
        case .padFileInFileTree(let p): "'\(p)' is a pad file inside 'file tree', which BEP 52 forbids"
        case .missingPiecesRoot(let p): "file '\(p)' has no 'pieces root'"
        case .invalidPiecesRoot(let p, let reason): "file '\(p)' has an invalid 'pieces root': \(reason)"
        case .invalidSymlink(let p, let reason): "symlink '\(p)' is invalid: \(reason)"
        case .duplicatePath(let p): "the path '\(p)' appears twice"
        case .pieceLayerUnknownRoot(let hex): "'piece layers' has an entry for \(hex), which is no file's pieces root"
        case .pieceLayerWrongSize(let p, let e, let a): "the piece layer of '\(p)' should be \(e) bytes, but is \(a)"
        case .pieceLayerMismatch(let p): "the piece layer of '\(p)' does not hash to the file's pieces root"
        case .piecesFieldWrongSize(let e, let a): "'pieces' should be \(e) bytes (20 per piece), but is \(a)"
        case .hybridMismatch(let what): "the v1 and v2 parts of this hybrid torrent disagree: \(what)"
        case .misalignedFile(let p): "file '\(p)' does not start on a piece boundary"
        }
    }
}

/// Hard bounds applied to every torrent read, whatever its source.
public struct MetainfoLimits: Sendable {
    public var maxFiles = 1_000_000
    public var maxFileLength: Int64 = 1 << 43        // 8 TiB
    public var maxTotalSize: Int64 = 1 << 46         // 64 TiB
    public var maxPieces: Int64 = 1 << 26
    public var maxPieceLength: Int64 = 1 << 28       // 256 MiB
    public var maxPathDepth = 48
    public var maxPathComponentBytes = 1_024
    public init() {}
    public static let standard = MetainfoLimits()
}
