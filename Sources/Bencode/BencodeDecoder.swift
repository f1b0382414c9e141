/// Bounds on what the decoder accepts. Every length read from input is checked against
/// these before anything is allocated for it.
public struct BencodeLimits: Sendable {
    /// Largest input accepted at all.
    public var maxInputSize: Int
    /// Deepest nesting of lists and dictionaries.
    public var maxDepth: Int
    /// Most values (of any kind) in one document.
    public var maxItems: Int

    public init(maxInputSize: Int = 64 << 20, maxDepth: Int = 64, maxItems: Int = 4_000_000) {
        self.maxInputSize = maxInputSize
        self.maxDepth = maxDepth
        self.maxItems = maxItems
    }

    /// Torrent files: up to 64 MiB of metainfo.
    public static let torrent = BencodeLimits()
    /// Small protocol messages (extension handshakes, KRPC, metadata requests).
    public static let message = BencodeLimits(maxInputSize: 64 << 10, maxDepth: 16, maxItems: 8_192)
}

public enum BencodeError: Error, Equatable, Sendable, CustomStringConvertible {
    case inputTooLarge(size: Int, limit: Int)
    case unexpectedEnd(offset: Int)
    case unexpectedByte(offset: Int, byte: UInt8)
    case leadingZero(offset: Int)
    case negativeZero(offset: Int)
    case integerOverflow(offset: Int)
    case stringLengthExceedsInput(offset: Int, length: Int)
    case nonStringKey(offset: Int)
    case unsortedKeys(offset: Int)
    case duplicateKey(offset: Int)
    case depthExceeded(limit: Int)
    case tooManyItems(limit: Int)
    case trailingData(offset: Int)

    public var description: String {
        switch self {
        case .inputTooLarge(let size, let limit): "bencoded data is \(size) bytes, more than the \(limit)-byte limit"
        case .unexpectedEnd(let o): "bencoded data ends early (at byte \(o))"
        case .unexpectedByte(let o, let b): "unexpected byte 0x\(String(b, radix: 16)) at byte \(o) of bencoded data"
        case .leadingZero(let o): "integer with a leading zero at byte \(o) (not canonical bencoding)"
        case .negativeZero(let o): "negative zero at byte \(o) (not canonical bencoding)"
        case .integerOverflow(let o): "integer too large at byte \(o)"
        case .stringLengthExceedsInput(let o, let n): "string of \(n) bytes at byte \(o) runs past the end of the data"
        case .nonStringKey(let o): "dictionary key at byte \(o) is not a string"
        case .unsortedKeys(let o): "dictionary keys out of order at byte \(o) (not canonical bencoding)"
        case .duplicateKey(let o): "duplicate dictionary key at byte \(o)"
        case .depthExceeded(let limit): "bencoded data nests deeper than \(limit) levels"
        case .tooManyItems(let limit): "bencoded data holds more than \(limit) values"
        case .trailingData(let o): "extra bytes after the bencoded value at byte \(o)"
        }
    }
}

/// Strict decoder: only canonical bencoding is accepted (sorted unique keys, no leading
/// zeros, no negative zero), so re-encoding a decoded value gives back the same bytes.
public struct BencodeDecoder {
    private let limits: BencodeLimits
    private let requireSortedKeys: Bool
    private var items = 0

    public init(limits: BencodeLimits = .torrent, requireSortedKeys: Bool = true) {
        self.limits = limits
        self.requireSortedKeys = requireSortedKeys
    }

    /// Decodes a whole document; trailing bytes are an error.
    public static func decode(_ bytes: [UInt8], limits: BencodeLimits = .torrent) throws(BencodeError) -> BValue {
        let (value, end) = try decodePrefix(bytes, limits: limits)
        guard end == bytes.count else { throw .trailingData(offset: end) }
        return value
    }

    /// Decodes one value at the start of `bytes` and returns where it ended (for messages
    /// that carry raw data after a bencoded header, such as ut_metadata data).
    public static func decodePrefix(_ bytes: [UInt8], limits: BencodeLimits = .torrent) throws(BencodeError) -> (BValue, end: Int) {
        guard bytes.count <= limits.maxInputSize else { throw .inputTooLarge(size: bytes.count, limit: limits.maxInputSize) }
        var decoder = BencodeDecoder(limits: limits)
        var spans: [[UInt8]: Range<Int>]? = nil
        return try bytes.withUnsafeBufferPointer { (buf) throws(BencodeError) -> (BValue, end: Int) in
            var pos = 0
            let v = try decoder.value(buf, &pos, depth: 0, spans: &spans)
            return (v, pos)
        }
    }

    /// Decodes a document whose top level is a dictionary and also returns the exact byte
    /// range of each top-level value. The info hash is taken over such a range.
    ///
    /// `requireSortedKeys: false` accepts keys in any order (still unique): some v1
    /// torrents in the wild have them, and libtorrent loads those. `allowTrailingData`
    /// ignores bytes after the dictionary (a newline appended by an editor), as libtorrent does.
    public static func decodeTopLevelDictionary(_ bytes: [UInt8], limits: BencodeLimits = .torrent, requireSortedKeys: Bool = true,
                                                allowTrailingData: Bool = false) throws(BencodeError) -> (BDictionary, spans: [[UInt8]: Range<Int>]) {
        guard bytes.count <= limits.maxInputSize else { throw .inputTooLarge(size: bytes.count, limit: limits.maxInputSize) }
        guard bytes.first == UInt8(ascii: "d") else {
            if bytes.isEmpty { throw .unexpectedEnd(offset: 0) }
            throw .unexpectedByte(offset: 0, byte: bytes[0])
        }
        var decoder = BencodeDecoder(limits: limits, requireSortedKeys: requireSortedKeys)
        var spans: [[UInt8]: Range<Int>]? = [:]
        let (value, end) = try bytes.withUnsafeBufferPointer { (buf) throws(BencodeError) -> (BValue, Int) in
            var pos = 0
            let v = try decoder.value(buf, &pos, depth: 0, spans: &spans)
            return (v, pos)
        }
        guard end == bytes.count || allowTrailingData else { throw .trailingData(offset: end) }
        return (value.dictionary!, spans ?? [:])
    }

    private mutating func value(_ b: UnsafeBufferPointer<UInt8>, _ pos: inout Int, depth: Int, spans: inout [[UInt8]: Range<Int>]?) throws(BencodeError) -> BValue {
        guard pos < b.count else { throw .unexpectedEnd(offset: pos) }
        items += 1
        guard items <= limits.maxItems else { throw .tooManyItems(limit: limits.maxItems) }
        switch b[pos] {
        case UInt8(ascii: "i"):
            pos += 1
            let v = try integer(b, &pos, terminator: UInt8(ascii: "e"))
            return .integer(v)
        case UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .bytes(try string(b, &pos))
        case UInt8(ascii: "l"):
            guard depth < limits.maxDepth else { throw .depthExceeded(limit: limits.maxDepth) }
            pos += 1
            var list: [BValue] = []
            var none: [[UInt8]: Range<Int>]? = nil
            while true {
                guard pos < b.count else { throw .unexpectedEnd(offset: pos) }
                if b[pos] == UInt8(ascii: "e") { pos += 1; return .list(list) }
                list.append(try value(b, &pos, depth: depth + 1, spans: &none))
            }
        case UInt8(ascii: "d"):
            guard depth < limits.maxDepth else { throw .depthExceeded(limit: limits.maxDepth) }
            pos += 1
            var dict = BDictionary()
            var previous: [UInt8]? = nil
            var none: [[UInt8]: Range<Int>]? = nil
            while true {
                guard pos < b.count else { throw .unexpectedEnd(offset: pos) }
                if b[pos] == UInt8(ascii: "e") { pos += 1; return .dictionary(dict) }
                let keyOffset = pos
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b[pos]) else { throw .nonStringKey(offset: pos) }
                let key = try string(b, &pos)
                if let p = previous {
                    if p == key { throw .duplicateKey(offset: keyOffset) }
                    if requireSortedKeys && !p.lexicographicallyPrecedes(key) { throw .unsortedKeys(offset: keyOffset) }
                }
                let start = pos
                let v = try value(b, &pos, depth: depth + 1, spans: &none)
                if depth == 0, spans != nil { spans![key] = start..<pos }
                if requireSortedKeys {
                    dict.appendSorted(key: key, value: v)
                } else {
                    guard dict[key] == nil else { throw .duplicateKey(offset: keyOffset) }
                    dict[key] = v
                }
                previous = key
            }
        default:
            throw .unexpectedByte(offset: pos, byte: b[pos])
        }
    }

    private func string(_ b: UnsafeBufferPointer<UInt8>, _ pos: inout Int) throws(BencodeError) -> [UInt8] {
        let start = pos
        let length = try integer(b, &pos, terminator: UInt8(ascii: ":"), allowNegative: false)
        guard length <= Int64(b.count - pos) else { throw .stringLengthExceedsInput(offset: start, length: Int(clamping: length)) }
        let n = Int(length)
        let s = Array(UnsafeBufferPointer(rebasing: b[pos..<(pos + n)]))
        pos += n
        return s
    }

    private func integer(_ b: UnsafeBufferPointer<UInt8>, _ pos: inout Int, terminator: UInt8, allowNegative: Bool = true) throws(BencodeError) -> Int64 {
        let start = pos
        var negative = false
        if allowNegative, pos < b.count, b[pos] == UInt8(ascii: "-") { negative = true; pos += 1 }
        let digitsStart = pos
        var value: Int64 = 0
        while pos < b.count, b[pos] != terminator {
            let c = b[pos]
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { throw .unexpectedByte(offset: pos, byte: c) }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(c - UInt8(ascii: "0")))
            guard !o1, !o2 else { throw .integerOverflow(offset: start) }
            value = a
            pos += 1
        }
        guard pos < b.count else { throw .unexpectedEnd(offset: pos) }
        let digits = pos - digitsStart
        guard digits > 0 else { throw .unexpectedByte(offset: pos, byte: b[pos]) }
        if digits > 1, b[digitsStart] == UInt8(ascii: "0") { throw .leadingZero(offset: start) }
        if negative, value == 0 { throw .negativeZero(offset: start) }
        pos += 1  // terminator
        return negative ? -value : value
    }
}
