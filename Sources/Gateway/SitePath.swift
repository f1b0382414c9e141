/// A request path made safe: percent-decoded once, split into segments, and refused if
/// it could name anything outside the site. Pure; every rule is a test case.
public enum SitePath {
    public enum Problem: Error, Equatable, CustomStringConvertible {
        case tooLong
        case notAbsolute
        case dotSegment
        case encodedSeparator
        case backslash
        case nul
        case invalidEncoding
        case invalidUTF8

        public var description: String {
            switch self {
            case .tooLong: "the path is too long"
            case .notAbsolute: "the path must start with /"
            case .dotSegment: "'.' and '..' are not allowed in paths"
            case .encodedSeparator: "an encoded '/' is not allowed in paths"
            case .backslash: "'\\' is not allowed in paths"
            case .nul: "NUL is not allowed in paths"
            case .invalidEncoding: "malformed percent-encoding"
            case .invalidUTF8: "the path is not valid UTF-8"
            }
        }
    }

    public static let maxLength = 8_192

    /// Segments of `raw` (the request target without its query), decoded. A trailing
    /// slash gives a final empty segment; "/" gives [""].
    public static func segments(_ raw: Substring) throws(Problem) -> [String] {
        let bytes = Array(raw.utf8)
        guard bytes.count <= maxLength else { throw .tooLong }
        guard bytes.first == UInt8(ascii: "/") else { throw .notAbsolute }
        var out: [String] = []
        var current: [UInt8] = []
        var i = 1
        func finish() throws(Problem) {
            guard current != [UInt8(ascii: ".")], current != [UInt8(ascii: "."), UInt8(ascii: ".")] else { throw .dotSegment }
            guard let s = String(validating: current, as: UTF8.self) else { throw .invalidUTF8 }
            out.append(s)
            current = []
        }
        while i < bytes.count {
            let b = bytes[i]
            switch b {
            case UInt8(ascii: "/"):
                // An empty segment in the middle ("//") could be read as an absolute path.
                if current.isEmpty { throw .dotSegment }
                try finish()
            case UInt8(ascii: "\\"):
                throw .backslash
            case UInt8(ascii: "%"):
                guard i + 2 < bytes.count, let hi = hex(bytes[i + 1]), let lo = hex(bytes[i + 2]) else { throw .invalidEncoding }
                let v = hi << 4 | lo
                if v == UInt8(ascii: "/") { throw .encodedSeparator }
                if v == UInt8(ascii: "\\") { throw .backslash }
                if v == 0 { throw .nul }
                current.append(v)
                i += 2
            case 0:
                throw .nul
            default:
                current.append(b)
            }
            i += 1
        }
        try finish()
        return out
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Percent-encodes a path segment for a link or a Location header.
    public static func encode(_ segment: String) -> String {
        var out = ""
        for b in segment.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let digits = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [digits[Int(b >> 4)], digits[Int(b & 15)]], as: UTF8.self)
            }
        }
        return out
    }
}

/// A single byte range from a `Range` header (RFC 9110 §14).
public enum ByteRange: Equatable {
    /// Serve the whole representation (no Range, several ranges, or one we do not parse).
    case whole
    case partial(Range<Int64>)
    case unsatisfiable

    public static func parse(_ header: String?, length: Int64) -> ByteRange {
        guard let header, header.utf8.count <= 256 else { return .whole }
        let h = header.trimmingSpaces
        guard h.lowercased().hasPrefix("bytes=") else { return .whole }
        let spec = h.dropFirst(6).trimmingSpaces
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return .whole }
        let first = spec[..<dash].trimmingSpaces
        let last = spec[spec.index(after: dash)...].trimmingSpaces
        func number(_ s: Substring) -> Int64? {
            guard !s.isEmpty, s.utf8.count <= 18, s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            return Int64(s)
        }
        if first.isEmpty {
            guard let n = number(last) else { return .whole }
            guard n > 0, length > 0 else { return .unsatisfiable }
            return .partial(max(0, length - n)..<length)
        }
        guard let a = number(first) else { return .whole }
        let b: Int64
        if last.isEmpty { b = length - 1 } else {
            guard let v = number(last) else { return .whole }
            guard v >= a else { return .whole }  // invalid: ignored
            b = min(v, length - 1)
        }
        guard a < length else { return .unsatisfiable }
        return .partial(a..<(b + 1))
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        guard let start = firstIndex(where: { $0 != " " && $0 != "\t" }) else { return self[endIndex...] }
        let end = lastIndex(where: { $0 != " " && $0 != "\t" })!
        return self[start...end]
    }
}

extension String {
    var trimmingSpaces: Substring { self[...].trimmingSpaces }
}
