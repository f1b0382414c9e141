import Hashing

public enum MagnetError: Error, Equatable, Sendable, CustomStringConvertible {
    case notAMagnet
    case malformed(String)
    case unsupportedTopic(String)
    case noInfoHash

    /// One line, escaped: a link comes from anywhere (a web page, a chat).
    public var description: String { Printable.escaped(text) }

    private var text: String {
        switch self {
        case .notAMagnet: "not a magnet link (it should start with 'magnet:?')"
        case .malformed(let what): "malformed magnet link: \(what)"
        case .unsupportedTopic(let xt): "unsupported magnet topic '\(xt)' (webseed reads urn:btih and urn:btmh:1220)"
        case .noInfoHash: "the magnet link has no 'xt' info hash"
        }
    }
}

/// A BitTorrent magnet link (BEP 9, with BEP 52's `urn:btmh` for v2).
public struct MagnetLink: Sendable, Equatable {
    public var v1InfoHash: SHA1Digest?
    public var v2InfoHash: SHA256Digest?
    public var displayName: String?
    public var trackers: [String] = []
    public var webSeeds: [String] = []
    /// Direct peers (`x.pe`), as `host:port` text.
    public var peers: [String] = []

    public init(v1InfoHash: SHA1Digest? = nil, v2InfoHash: SHA256Digest? = nil, displayName: String? = nil,
                trackers: [String] = [], webSeeds: [String] = [], peers: [String] = []) {
        self.v1InfoHash = v1InfoHash
        self.v2InfoHash = v2InfoHash
        self.displayName = displayName
        self.trackers = trackers
        self.webSeeds = webSeeds
        self.peers = peers
    }

    public init(metainfo m: Metainfo, peers: [String] = []) {
        self.init(v1InfoHash: m.v1InfoHash, v2InfoHash: m.v2InfoHash, displayName: m.name,
                  trackers: m.trackers.flatMap { $0 }, webSeeds: m.webSeeds, peers: peers)
    }

    /// `btih` first, then `btmh`, as libtorrent writes them.
    public var uri: String {
        var parts: [String] = []
        if let v1 = v1InfoHash { parts.append("xt=urn:btih:\(v1.hex)") }
        if let v2 = v2InfoHash { parts.append("xt=urn:btmh:1220\(v2.hex)") }
        if let dn = displayName { parts.append("dn=\(Self.escape(dn))") }
        for t in trackers { parts.append("tr=\(Self.escape(t))") }
        for w in webSeeds { parts.append("ws=\(Self.escape(w))") }
        for p in peers { parts.append("x.pe=\(Self.escape(p))") }
        return "magnet:?" + parts.joined(separator: "&")
    }

    public static let maxLength = 8_192

    public init(parsing text: String) throws(MagnetError) {
        guard text.utf8.count <= Self.maxLength else { throw .malformed("longer than \(Self.maxLength) bytes") }
        guard text.lowercased().hasPrefix("magnet:?") else { throw .notAMagnet }
        self.init()
        let query = text.dropFirst("magnet:?".count)
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            guard let eq = pair.firstIndex(of: "=") else { throw .malformed("parameter '\(pair)' has no value") }
            var key = String(pair[..<eq]).lowercased()
            // libtorrent reads `tr.1` as `tr`.
            if let dot = key.lastIndex(of: "."), key[key.index(after: dot)...].allSatisfy(\.isNumber), key[..<dot] != "x" {
                key = String(key[..<dot])
            }
            guard let value = Self.unescape(pair[pair.index(after: eq)...]) else { throw .malformed("bad percent-encoding in '\(key)'") }
            switch key {
            case "xt": try topic(value)
            case "dn": displayName = value
            case "tr": trackers.append(value)
            case "ws": webSeeds.append(value)
            case "x.pe": peers.append(value)
            default: break  // unknown parameters are ignored, as every client does
            }
        }
        guard v1InfoHash != nil || v2InfoHash != nil else { throw .noInfoHash }
    }

    private mutating func topic(_ xt: String) throws(MagnetError) {
        let lower = xt.lowercased()
        if lower.hasPrefix("urn:btih:") {
            let h = String(xt.dropFirst(9))
            if h.count == 40, let d = SHA1Digest(hex: h) {
                v1InfoHash = d
            } else if h.count == 32, let bytes = SiteID.base32Decode(h), let d = SHA1Digest(bytes: bytes) {
                v1InfoHash = d
            } else {
                throw .malformed("urn:btih needs 40 hex or 32 base32 characters")
            }
        } else if lower.hasPrefix("urn:btmh:") {
            let h = lower.dropFirst(9)
            guard h.hasPrefix("1220") else { throw .unsupportedTopic(xt) }
            guard let d = SHA256Digest(hex: String(h.dropFirst(4))) else { throw .malformed("urn:btmh:1220 needs 64 hex characters") }
            v2InfoHash = d
        } else {
            throw .unsupportedTopic(xt)
        }
    }

    private static func escape(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: ":"), UInt8(ascii: "/"),
                 UInt8(ascii: "["), UInt8(ascii: "]"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                out += "%" + HexCoding.encode([b]).uppercased()
            }
        }
        return out
    }

    private static func unescape(_ s: Substring) -> String? {
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let c = it.popFirst() {
            if c == UInt8(ascii: "%") {
                guard it.count >= 2, let v = HexCoding.decode(String(decoding: it.prefix(2), as: UTF8.self)) else { return nil }
                bytes.append(v[0])
                it = it.dropFirst(2)
            } else if c == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(c)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
