/// A BEP 14 local service discovery announce: an HTTP-like request sent to a multicast
/// group, naming the TCP port a client listens on and the torrents (20-byte hashes, hex)
/// it takes part in.
///
///     BT-SEARCH * HTTP/1.1\r\n
///     Host: 239.192.152.143:6771\r\n
///     Port: 6881\r\n
///     Infohash: <40 hex>\r\n        (one or more)
///     cookie: <opaque>\r\n          (lets a client drop its own announces)
///     \r\n\r\n
public struct LSDMessage: Sendable, Equatable {
    public enum Group: Sendable, Equatable {
        case ipv4, ipv6

        public var address: String { self == .ipv4 ? "239.192.152.143" : "ff15::efc0:988f" }
        public var hostHeader: String { self == .ipv4 ? "239.192.152.143:6771" : "[ff15::efc0:988f]:6771" }
    }

    public static let port = 6771
    /// BEP 14: a packet should stay under 1400 bytes (no fragmentation).
    public static let maxSize = 1400
    /// Fewest bytes an announce of no hash takes; each hash adds `hashLineSize`.
    static let hashLineSize = "Infohash: \r\n".utf8.count + 40

    public var group: Group
    public var port: UInt16
    public var hashes: [[UInt8]]
    public var cookie: String?

    public init(group: Group, port: UInt16, hashes: [[UInt8]], cookie: String?) {
        self.group = group
        self.port = port
        self.hashes = hashes
        self.cookie = cookie
    }

    public func encoded() -> [UInt8] {
        var text = "BT-SEARCH * HTTP/1.1\r\nHost: \(group.hostHeader)\r\nPort: \(port)\r\n"
        for h in hashes { text += "Infohash: " + Self.hex(h) + "\r\n" }
        if let cookie { text += "cookie: \(cookie)\r\n" }
        text += "\r\n\r\n"
        return Array(text.utf8)
    }

    /// How many hashes fit one packet beside the headers (with a cookie of `cookieLength`).
    public static func hashesPerPacket(cookieLength: Int) -> Int {
        let fixed = "BT-SEARCH * HTTP/1.1\r\nHost: [ff15::efc0:988f]:6771\r\nPort: 65535\r\ncookie: \r\n\r\n\r\n".utf8.count + cookieLength
        return (maxSize - fixed) / hashLineSize
    }

    /// Reads an announce. Headers are matched without regard to case and any order, unknown
    /// ones ignored (BEP 14: forwards compatibility). Refused: anything over `maxSize`, a
    /// first line other than `BT-SEARCH * HTTP/1.1`, no or a bad `Port`, no `Infohash`, a
    /// hash that is not 40 hex digits. The `Host` header is not required (some clients
    /// omit it), and does not decide the group: the socket it came in on does.
    public static func parse(_ bytes: [UInt8], group: Group) throws(LSDError) -> LSDMessage {
        guard bytes.count <= maxSize else { throw .malformed("\(bytes.count) bytes, more than \(maxSize)") }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .malformed("not UTF-8") }
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: true).makeIterator()
        guard let first = lines.next(), first.trimmingSpaces == "BT-SEARCH * HTTP/1.1" else { throw .malformed("not a BT-SEARCH request") }
        var port: UInt16?
        var hashes: [[UInt8]] = []
        var cookie: String?
        while let line = lines.next() {
            guard let colon = line.firstIndex(of: ":") else { throw .malformed("a header line without ':'") }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingSpaces
            switch name {
            case "port":
                guard let p = UInt16(value), p != 0 else { throw .malformed("bad port '\(Self.printable(value.prefix(16)))'") }
                port = p
            case "infohash":
                guard value.utf8.count == 40, let h = Self.unhex(value) else { throw .malformed("bad infohash '\(Self.printable(value.prefix(48)))'") }
                if !hashes.contains(h) { hashes.append(h) }
            case "cookie":
                cookie = String(value.prefix(64).trimmingSpaces)
            default:
                continue
            }
        }
        guard let port else { throw .malformed("no Port header") }
        guard !hashes.isEmpty else { throw .malformed("no Infohash header") }
        return LSDMessage(group: group, port: port, hashes: hashes, cookie: cookie)
    }

    /// Text from the packet as it may appear in an error: control characters become `?`,
    /// so an error stays one line.
    static func printable(_ text: Substring) -> String {
        String(text.unicodeScalars.map { $0.value < 32 || $0.value == 127 ? "?" : Character($0) })
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }, as: UTF8.self)
    }

    static func unhex(_ text: Substring) -> [UInt8]? {
        var out: [UInt8] = []
        var high: UInt8?
        for c in text.utf8 {
            let v: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): v = c - UInt8(ascii: "A") + 10
            default: return nil
            }
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        return high == nil ? out : nil
    }
}

public enum LSDError: Error, Sendable, Equatable, CustomStringConvertible {
    case malformed(String)
    public var description: String {
        switch self {
        case .malformed(let why): "not a local discovery announce: \(why)"
        }
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return s
    }
}
