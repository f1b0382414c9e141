import Metainfo

/// Where a torrent's bytes lie on a BEP 19 web seed: each file's URL under the seed's base
/// URL, and which HTTP ranges (or known zeros) make up a range of the torrent's piece
/// address space.
///
/// URLs: a single-file torrent is the base URL itself, or the base plus the torrent's name
/// when it ends with `/`. A multi-file torrent's file is `base/name/path/…`, every segment
/// percent-encoded; a base without a trailing `/` gets one (as libtorrent does).
public struct WebSeedLayout: Sendable {
    /// One stretch of a torrent range: an HTTP range of one file, or padding (zeros).
    public struct Segment: Sendable, Equatable {
        /// nil: padding between files, known to be zeros.
        public var url: String?
        /// Bytes within the file (for padding, only the length counts).
        public var range: Range<Int64>
        /// The whole file's length (a `200` answer is usable when the range is all of it).
        public var fileLength: Int64
        public var length: Int64 { Int64(range.count) }
    }

    struct Entry {
        var url: String
        var offset: Int64
        var length: Int64
    }

    /// Files with bytes, in order of offset.
    let entries: [Entry]

    public init(base: String, metainfo m: Metainfo) {
        var out: [Entry] = []
        for f in m.files where f.length > 0 && !f.isSymlink {
            out.append(Entry(url: Self.url(base: base, metainfo: m, file: f), offset: f.offset, length: f.length))
        }
        entries = out.sorted { $0.offset < $1.offset }
    }

    /// The URL of file `f` of `m` on the web seed at `base`.
    public static func url(base: String, metainfo m: Metainfo, file f: TorrentFile) -> String {
        if m.isSingleFile { return base.hasSuffix("/") ? base + escape(m.name) : base }
        let root = base.hasSuffix("/") ? base : base + "/"
        return root + ([m.name] + f.path).map(escape).joined(separator: "/")
    }

    /// Percent-encodes everything but RFC 3986's unreserved characters.
    public static func escape(_ segment: String) -> String {
        var out = ""
        for byte in segment.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 15)]], as: UTF8.self)
            }
        }
        return out
    }

    /// The segments that make up `range` of the piece address space, in order; bytes outside
    /// every file are padding.
    public func segments(_ range: Range<Int64>) -> [Segment] {
        var out: [Segment] = []
        var at = range.lowerBound
        // The first file that ends after `at`.
        var lo = 0, hi = entries.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if entries[mid].offset + entries[mid].length <= at { lo = mid + 1 } else { hi = mid }
        }
        var i = lo
        while at < range.upperBound {
            if i < entries.count, entries[i].offset <= at {
                let e = entries[i]
                let end = min(range.upperBound, e.offset + e.length)
                out.append(Segment(url: e.url, range: (at - e.offset)..<(end - e.offset), fileLength: e.length))
                at = end
                i += 1
            } else {
                let end = min(range.upperBound, i < entries.count ? entries[i].offset : range.upperBound)
                out.append(Segment(url: nil, range: 0..<(end - at), fileLength: 0))
                at = end
            }
        }
        return out
    }
}
