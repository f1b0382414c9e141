import Bencode
import Hashing

/// Why a datagram is not an acceptable KRPC message. Keys are named by path (`a.id`,
/// `r.nodes`) so one line says exactly what was wrong.
public enum KRPCError: Error, Equatable, Sendable, CustomStringConvertible {
    case datagramTooLarge(size: Int, limit: Int)
    case bencoding(BencodeError)
    case notADictionary(actual: String)
    case missingKey(String)
    case wrongType(key: String, expected: String, actual: String)
    /// `expected` says what lengths fit, e.g. "20" or "a multiple of 26".
    case wrongLength(key: String, expected: String, actual: Int)
    case transactionIDTooLong(length: Int, limit: Int)
    case unknownMessageType([UInt8])
    case unknownMethod([UInt8])
    case valueOutOfRange(key: String, value: Int64)
    /// A reply (`r` or `e`) whose transaction id matches no query we have outstanding.
    case unsolicitedReply(transactionID: [UInt8])
    /// A find_node/get_peers reply carrying none of the keys that answer the question.
    case missingAnswer(method: KRPCMethod)

    /// The code to answer with when this datagram was a query (see
    /// `KRPCDecoder.queryTransactionID(in:)`): 204 for an unknown method, 203 otherwise.
    public var replyCode: KRPCErrorCode {
        if case .unknownMethod = self { return .methodUnknown }
        return .protocolError
    }

    public var description: String {
        switch self {
        case .datagramTooLarge(let size, let limit): "KRPC datagram of \(size) bytes exceeds the \(limit)-byte limit"
        case .bencoding(let e): "KRPC datagram is not canonical bencoding: \(e)"
        case .notADictionary(let actual): "KRPC message must be a dictionary, not a \(actual)"
        case .missingKey(let k): "KRPC message lacks '\(k)'"
        case .wrongType(let k, let expected, let actual): "KRPC '\(k)' should be a \(expected), but is a \(actual)"
        case .wrongLength(let k, let expected, let actual): "KRPC '\(k)' is \(actual) bytes; expected \(expected)"
        case .transactionIDTooLong(let n, let limit): "KRPC transaction id is \(n) bytes, more than \(limit)"
        case .unknownMessageType(let y): "KRPC message type '\(KRPCError.printable(y))' is not q, r or e"
        case .unknownMethod(let q): "unknown KRPC method '\(KRPCError.printable(q))'"
        case .valueOutOfRange(let k, let v): "KRPC '\(k)' has out-of-range value \(v)"
        case .unsolicitedReply(let t): "KRPC reply with transaction id \(HexCoding.encode(t)) answers no outstanding query"
        case .missingAnswer(let m): "KRPC \(m.rawValue) reply has neither nodes nor the values it was asked for"
        }
    }

    /// Short names print as text, anything else as hex: these bytes come from strangers.
    private static func printable(_ b: [UInt8]) -> String {
        if b.count <= 32, b.allSatisfy({ (0x20..<0x7f).contains($0) }) { return String(decoding: b, as: UTF8.self) }
        return "0x" + HexCoding.encode(b.prefix(32))
    }
}
