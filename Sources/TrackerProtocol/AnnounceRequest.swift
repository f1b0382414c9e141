/// An HTTP announce as a tracker receives it (BEP 3): the query string of `GET /announce?…`
/// read into an `Announce`, bounded before anything is kept. The peer's address is not
/// here: it is the connection's (a tracker that believed `ip=` would let anyone point a
/// swarm at a host of their choosing), so `ip`, `ipv4`, `ipv6` and `localip` are ignored,
/// as are other parameters this tracker has no use for (`key`'s text, `trackerid`,
/// `supportcrypto`, `corrupt`, …).
public struct AnnounceRequest: Sendable, Equatable {
    public var announce: Announce
    /// `compact=1` (BEP 23), the default when not given: peers as 6- and 18-byte strings.
    /// `compact=0`: a list of dictionaries.
    public var compact: Bool

    public init(announce: Announce, compact: Bool = true) {
        self.announce = announce
        self.compact = compact
    }

    /// Reads `query` (the part after `?`, still percent-encoded). Every refusal is one
    /// readable line, meant to be sent back as the `failure reason`.
    public static func parse(_ query: String) throws(AnnounceRefusal) -> AnnounceRequest {
        let bytes = Array(query.utf8)
        guard bytes.count <= TrackerServerLimits.maxQueryLength else {
            throw AnnounceRefusal("the query is \(bytes.count) bytes, over \(TrackerServerLimits.maxQueryLength)")
        }
        var fields: [String: [UInt8]] = [:]
        var count = 0
        for part in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            count += 1
            guard count <= TrackerServerLimits.maxParameters else {
                throw AnnounceRefusal("more than \(TrackerServerLimits.maxParameters) query parameters")
            }
            let eq = part.firstIndex(of: UInt8(ascii: "="))
            let rawName = eq.map { part[part.startIndex..<$0] } ?? part
            let rawValue = eq.map { part[part.index(after: $0)...] } ?? []
            guard let nameBytes = percentDecoded(rawName), nameBytes.count <= 32 else {
                throw AnnounceRefusal("a malformed parameter name")
            }
            let name = String(decoding: nameBytes, as: UTF8.self)
            guard Self.known.contains(name) else { continue }
            guard fields[name] == nil else { throw AnnounceRefusal("\(name) is given more than once") }
            guard let value = percentDecoded(rawValue) else { throw AnnounceRefusal("\(name) is not percent-encoded correctly") }
            fields[name] = value
        }

        guard let hash = fields["info_hash"] else { throw AnnounceRefusal("no info_hash") }
        guard hash.count == 20 else { throw AnnounceRefusal("info_hash is \(hash.count) bytes, not 20") }
        guard let id = fields["peer_id"] else { throw AnnounceRefusal("no peer_id") }
        guard id.count == 20 else { throw AnnounceRefusal("peer_id is \(id.count) bytes, not 20") }
        guard let portText = fields["port"] else { throw AnnounceRefusal("no port") }
        guard let port = number(portText), (1...65535).contains(port) else { throw AnnounceRefusal("port is not a number in 1…65535") }
        var a = Announce(infoHash: hash, peerID: id, port: UInt16(port))
        guard let leftText = fields["left"] else { throw AnnounceRefusal("no left") }
        guard let left = number(leftText) else { throw AnnounceRefusal("left is not a byte count") }
        a.left = left
        for (name, keyPath) in [("uploaded", \Announce.uploaded), ("downloaded", \Announce.downloaded)] {
            guard let text = fields[name] else { continue }
            guard let n = number(text) else { throw AnnounceRefusal("\(name) is not a byte count") }
            a[keyPath: keyPath] = n
        }
        switch fields["event"].map({ String(decoding: $0, as: UTF8.self) }) {
        case nil, "", "paused"?: a.event = .none  // "paused": a partial seed (BEP 21), still in the swarm
        case "started"?: a.event = .started
        case "completed"?: a.event = .completed
        case "stopped"?: a.event = .stopped
        case _?: throw AnnounceRefusal("unknown event '\(Self.visible(fields["event"] ?? [], max: 16))'")
        }
        a.numWant = TrackerServerLimits.defaultNumWant
        if let text = fields["numwant"] {
            // Some clients send -1 for "the tracker's default".
            if text == Array("-1".utf8) {
                a.numWant = TrackerServerLimits.defaultNumWant
            } else {
                guard let n = number(text) else { throw AnnounceRefusal("numwant is not a number") }
                a.numWant = Int(min(n, Int64(TrackerServerLimits.maxNumWant)))
            }
        }
        if let text = fields["key"], text.count <= 8, let k = UInt32(String(decoding: text, as: UTF8.self), radix: 16) { a.key = k }
        var compact = true
        switch fields["compact"].map({ String(decoding: $0, as: UTF8.self) }) {
        case nil, "1"?: compact = true
        case "0"?: compact = false
        default: throw AnnounceRefusal("compact is neither 0 nor 1")
        }
        return AnnounceRequest(announce: a, compact: compact)
    }

    /// At most `max` bytes of a value, printable ASCII as is and every other byte as `\xNN`,
    /// cut to 40 characters, so a refusal quoting it stays one short line.
    static func visible(_ bytes: [UInt8], max: Int) -> String {
        let text = bytes.prefix(max).map { (32...126).contains($0) ? String(UnicodeScalar($0)) : "\\x" + String($0, radix: 16, uppercase: true).leftPadded(2) }.joined()
        return text.count > 40 ? text.prefix(40) + "…" : text + (bytes.count > max ? "…" : "")
    }

    private static let known: Set<String> = ["info_hash", "peer_id", "port", "uploaded", "downloaded", "left", "event", "compact", "numwant", "key"]

    /// A non-negative decimal of at most 18 digits (so it fits an Int64), or nil.
    static func number(_ text: [UInt8]) -> Int64? {
        guard !text.isEmpty, text.count <= 18, text.allSatisfy({ (48...57).contains($0) }) else { return nil }
        return text.reduce(Int64(0)) { $0 * 10 + Int64($1 - 48) }
    }

    /// RFC 3986 percent-decoding (`+` is an ordinary character, as clients escape a `+` byte);
    /// nil for a `%` not followed by two hex digits.
    static func percentDecoded(_ bytes: ArraySlice<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let b = bytes[i]
            if b == UInt8(ascii: "%") {
                guard i + 2 < bytes.endIndex, let hi = hex(bytes[i + 1]), let lo = hex(bytes[i + 2]) else { return nil }
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(b)
                i += 1
            }
        }
        return out
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 65...70: c - 55
        case 97...102: c - 87
        default: nil
        }
    }
}

/// Why an announce was refused: one line, sent back as the `failure reason`.
public struct AnnounceRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    /// Control characters in `reason` become spaces: it is one line, whatever it quotes.
    public init(_ reason: String) {
        self.reason = String(String.UnicodeScalarView(reason.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : $0 }))
    }
    public var description: String { reason }
}

/// Bounds of the tracker side (a gateway answering `/announce`).
public enum TrackerServerLimits {
    /// Longest query string read (longer ones are refused unread).
    public static let maxQueryLength = 2_048
    /// Most `&`-separated parameters read.
    public static let maxParameters = 32
    /// Peers in one answer at most, whatever `numwant` asks; also the default.
    public static let maxNumWant = 50
    public static let defaultNumWant = 50
}

private extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
