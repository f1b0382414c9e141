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
    /// For symlinks (attribute `l` with a `symlink path`): the target, relative to the torrent root.
    public var symlinkTarget: [String]? = nil
}

/// Rules for path components, shared by the parser (names from a torrent) and the
/// creator (names from disk). They are libtorrent 2.0.8's (`sanitize_append_path_element`),
/// so a download lands under the same names as libtorrent would give it.
public enum PathRules {
    public enum Verdict: Equatable {
        case ok(String)
        /// Usable after removing or replacing unsafe characters (libtorrent loads such torrents too).
        case sanitized(String)
        /// Nothing safe is left once the characters libtorrent removes are removed, or only
        /// `.` or `..` is: the caller decides (libtorrent refuses such a torrent name for a
        /// single-file torrent and substitutes one elsewhere).
        case vanished
        case rejected(reason: String)
    }

    /// Judges one component given as raw bytes from a torrent. Removed: NUL, `/`, `\` and
    /// the bidirectional overrides that make `exe.txt` display as `txt.exe`; replaced by
    /// `_`: other control characters and each invalid UTF-8 sequence.
    public static func check(_ raw: [UInt8], maxBytes: Int = MetainfoLimits.standard.maxPathComponentBytes) -> Verdict {
        if raw.isEmpty { return .rejected(reason: "empty name") }
        if raw == [0x2e] { return .rejected(reason: "'.' component") }
        if raw == [0x2e, 0x2e] { return .rejected(reason: "'..' component") }
        if raw.count > maxBytes { return .rejected(reason: "a name longer than \(maxBytes) bytes") }
        if raw.allSatisfy({ $0 >= 0x20 && $0 < 0x7f && $0 != 0x2f && $0 != 0x5c }) {
            return .ok(String(decoding: raw, as: UTF8.self))
        }
        var out = String.UnicodeScalarView()
        var changed = false
        var iterator = raw.makeIterator()
        var decoder = UTF8()
        decoding: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let s):
                if removed.contains(s.value) {
                    changed = true
                } else if s.value < 0x20 {
                    out.append("_")
                    changed = true
                } else {
                    out.append(s)
                }
            case .error:
                out.append("_")
                changed = true
            case .emptyInput:
                break decoding
            }
        }
        let text = String(out)
        guard changed else { return .ok(text) }
        if text.isEmpty || text == "." || text == ".." { return .vanished }
        return .sanitized(text)
    }

    /// NUL, `/`, `\`, and U+202A–U+202E, U+200E, U+200F (libtorrent's `filter_path_character`).
    private static let removed: Set<UInt32> = [0x00, 0x2f, 0x5c, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x200e, 0x200f]
}
