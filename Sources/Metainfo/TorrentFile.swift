import Hashing

public enum TorrentVersion: String, Sendable {
    case v1, v2, hybrid
    public var hasV2: Bool { self != .v1 }
    public var hasV1: Bool { self != .v2 }
}

/// One real file of a torrent (never a pad file), in torrent order: file-tree order for
/// v2 and hybrid torrents, list order for v1.
public struct TorrentFile: Sendable, Equatable {
    /// Path components relative to the torrent's root folder, safe to join onto a
    /// directory: no empty, `.` or `..` component, none containing `/` or NUL.
    public var path: [String]
    public var length: Int64
    /// v2 identity of the content; nil for empty files, symlinks and v1-only torrents.
    public var piecesRoot: SHA256Digest?
    /// BEP 47 attribute flags as given ("x", "h", "l"; never "p").
    public var attributes: String
    /// For symlinks (attribute `l`): the target, relative to the torrent root.
    public var symlinkTarget: [String]?
    /// First byte of the file in the torrent's piece address space.
    public var offset: Int64

    public init(path: [String], length: Int64, piecesRoot: SHA256Digest? = nil, attributes: String = "", symlinkTarget: [String]? = nil, offset: Int64 = 0) {
        self.path = path
        self.length = length
        self.piecesRoot = piecesRoot
        self.attributes = attributes
        self.symlinkTarget = symlinkTarget
        self.offset = offset
    }

    public var pathString: String { path.joined(separator: "/") }
    public var isSymlink: Bool { symlinkTarget != nil }
}

/// An entry of a v1 `files` list, pad files included, with its offset in the v1 stream.
public struct V1Entry: Sendable, Equatable {
    public var path: [String]
    public var length: Int64
    public var isPad: Bool
    public var offset: Int64
}

/// Rules for path components, shared by the parser (names from a torrent) and the
/// creator (names from disk).
public enum PathRules {
    public enum Verdict: Equatable {
        case ok(String)
        /// Usable after replacing unsafe characters (libtorrent loads such torrents too).
        case sanitized(String)
        case rejected(reason: String)
    }

    /// Judges one component given as raw bytes from a torrent.
    public static func check(_ raw: [UInt8], maxBytes: Int = MetainfoLimits.standard.maxPathComponentBytes) -> Verdict {
        if raw.isEmpty { return .rejected(reason: "empty name") }
        if raw == [0x2e] { return .rejected(reason: "'.' component") }
        if raw == [0x2e, 0x2e] { return .rejected(reason: "'..' component") }
        if raw.count > maxBytes { return .rejected(reason: "a name longer than \(maxBytes) bytes") }
        var hasUnsafeByte = false
        for b in raw where b == 0x2f || b == 0x00 { hasUnsafeByte = true; break }
        if !hasUnsafeByte, let text = String(validating: raw, as: UTF8.self) {
            return .ok(text)
        }
        // Replace '/', NUL and every byte of an invalid UTF-8 sequence with '_'.
        var out = ""
        var iterator = raw.makeIterator()
        var decoder = UTF8()
        decoding: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let s):
                out.unicodeScalars.append(s == "/" || s == "\0" ? "_" : s)
            case .error:
                out.append("_")
            case .emptyInput:
                break decoding
            }
        }
        if out == "." || out == ".." { return .rejected(reason: "'\(out)' component") }
        return .sanitized(out)
    }
}
