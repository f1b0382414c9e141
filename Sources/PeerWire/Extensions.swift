import Bencode

/// BEP 10 extension handshake (extended message id 0).
public struct ExtensionHandshake: Sendable, Equatable {
    /// Extension name → the id the *sender* wants to receive it under; 0 disables.
    public var messages: [String: UInt8] = [:]
    public var metadataSize: Int?
    public var client: String?
    public var requestQueue: Int?
    public var yourIP: [UInt8]?
    public var uploadOnly = false
    public var listenPort: UInt16?

    public init() {}

    public func encode() -> [UInt8] {
        var m = BDictionary()
        for (name, id) in messages { m[name] = .integer(Int64(id)) }
        var d = BDictionary()
        d["m"] = .dictionary(m)
        if let s = metadataSize { d["metadata_size"] = .integer(Int64(s)) }
        if let v = client { d["v"] = .string(v) }
        if let q = requestQueue { d["reqq"] = .integer(Int64(q)) }
        if let ip = yourIP { d["yourip"] = .bytes(ip) }
        if uploadOnly { d["upload_only"] = .integer(1) }
        if let p = listenPort { d["p"] = .integer(Int64(p)) }
        return BValue.dictionary(d).encoded()
    }

    /// Lenient in what it accepts (unknown keys, wrong-typed optional keys are ignored),
    /// strict in size: the payload is bounded by `BencodeLimits.message`.
    public init(decoding bytes: [UInt8]) throws(BencodeError) {
        let v = try BencodeDecoder.decode(bytes, limits: .message)
        guard let d = v.dictionary else { throw .unexpectedByte(offset: 0, byte: bytes.first ?? 0) }
        if let m = d["m"]?.dictionary {
            for e in m.entries {
                guard let name = String(validating: e.key, as: UTF8.self), let id = e.value.integer, (0...255).contains(id) else { continue }
                messages[name] = UInt8(id)
            }
        }
        if let s = d["metadata_size"]?.integer, s > 0, s <= Int64(Int32.max) { metadataSize = Int(s) }
        client = d["v"]?.utf8String
        if let q = d["reqq"]?.integer, q > 0 { requestQueue = Int(min(q, 100_000)) }
        if let ip = d["yourip"]?.bytes, ip.count == 4 || ip.count == 16 { yourIP = ip }
        uploadOnly = d["upload_only"]?.integer == 1
        if let p = d["p"]?.integer, (1...65535).contains(p) { listenPort = UInt16(p) }
    }
}

/// BEP 9 `ut_metadata` messages. The info dict is sent in 16 KiB pieces.
public enum MetadataMessage: Sendable, Equatable {
    case request(piece: Int)
    case data(piece: Int, totalSize: Int, payload: [UInt8])
    case reject(piece: Int)

    public static let pieceSize = 16_384

    public func encode() -> [UInt8] {
        switch self {
        case .request(let p):
            return BValue.dictionary(BDictionary([("msg_type", .integer(0)), ("piece", .integer(Int64(p)))])).encoded()
        case .data(let p, let total, let payload):
            return BValue.dictionary(BDictionary([("msg_type", .integer(1)), ("piece", .integer(Int64(p))),
                                                  ("total_size", .integer(Int64(total)))])).encoded() + payload
        case .reject(let p):
            return BValue.dictionary(BDictionary([("msg_type", .integer(2)), ("piece", .integer(Int64(p)))])).encoded()
        }
    }

    /// nil for a message type this side ignores (BEP 9: unknown msg_type is ignored).
    public static func decode(_ bytes: [UInt8]) throws(BencodeError) -> MetadataMessage? {
        let (v, end) = try BencodeDecoder.decodePrefix(bytes, limits: .message)
        guard let d = v.dictionary, let type = d["msg_type"]?.integer, let piece = d["piece"]?.integer,
              piece >= 0, piece < Int64(Int32.max) else { return nil }
        switch type {
        case 0: return .request(piece: Int(piece))
        case 1:
            guard let total = d["total_size"]?.integer, total > 0, total < Int64(Int32.max) else { return nil }
            return .data(piece: Int(piece), totalSize: Int(total), payload: Array(bytes[end...]))
        case 2: return .reject(piece: Int(piece))
        default: return nil
        }
    }
}
