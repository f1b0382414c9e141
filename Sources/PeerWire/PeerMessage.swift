import Hashing
import NIOCore

/// Message ids after the handshake, grouped by BEP.
public enum PeerMessageID: UInt8, Sendable {
    // BEP 3
    case choke = 0, unchoke = 1, interested = 2, notInterested = 3, have = 4, bitfield = 5, request = 6, piece = 7, cancel = 8
    // BEP 5
    case port = 9
    // BEP 6
    case suggestPiece = 13, haveAll = 14, haveNone = 15, rejectRequest = 16, allowedFast = 17
    // BEP 10
    case extended = 20
    // BEP 52
    case hashRequest = 21, hashes = 22, hashReject = 23
}

/// A block request (also the payload of cancel and reject).
public struct BlockRequest: Sendable, Hashable {
    public var piece: UInt32
    public var begin: UInt32
    public var length: UInt32
    public init(piece: UInt32, begin: UInt32, length: UInt32) {
        self.piece = piece
        self.begin = begin
        self.length = length
    }
}

/// BEP 52 hash request header (also the header of hashes and hash reject).
public struct HashRequest: Sendable, Hashable {
    public var piecesRoot: SHA256Digest
    public var baseLayer: UInt32
    public var index: UInt32
    public var length: UInt32
    public var proofLayers: UInt32
    public init(piecesRoot: SHA256Digest, baseLayer: UInt32, index: UInt32, length: UInt32, proofLayers: UInt32) {
        self.piecesRoot = piecesRoot
        self.baseLayer = baseLayer
        self.index = index
        self.length = length
        self.proofLayers = proofLayers
    }
}

public enum PeerMessage: Sendable, Equatable {
    case keepAlive
    case choke, unchoke, interested, notInterested
    case have(UInt32)
    case bitfield(ByteBuffer)
    case request(BlockRequest)
    case piece(piece: UInt32, begin: UInt32, block: ByteBuffer)
    case cancel(BlockRequest)
    case port(UInt16)
    case suggestPiece(UInt32)
    case haveAll, haveNone
    case rejectRequest(BlockRequest)
    case allowedFast(UInt32)
    /// BEP 10: `id` 0 is the extension handshake; others are the ids we advertised.
    case extended(id: UInt8, payload: ByteBuffer)
    case hashRequest(HashRequest)
    case hashes(HashRequest, hashes: ByteBuffer)
    case hashReject(HashRequest)
    /// An id this codec does not know: ignored by the receiver, as BEP 3 asks.
    case unknown(id: UInt8, payload: ByteBuffer)

    /// Bytes on the wire including the 4-byte length prefix.
    public var wireLength: Int { 4 + bodyLength }

    var bodyLength: Int {
        switch self {
        case .keepAlive: 0
        case .choke, .unchoke, .interested, .notInterested, .haveAll, .haveNone: 1
        case .have, .suggestPiece, .allowedFast: 5
        case .bitfield(let b): 1 + b.readableBytes
        case .request, .cancel, .rejectRequest: 13
        case .piece(_, _, let block): 9 + block.readableBytes
        case .port: 3
        case .extended(_, let p): 2 + p.readableBytes
        case .hashRequest, .hashReject: 49
        case .hashes(_, let h): 49 + h.readableBytes
        case .unknown(_, let p): 1 + p.readableBytes
        }
    }

    public func encode(into out: inout ByteBuffer) {
        out.writeInteger(UInt32(bodyLength))
        func id(_ i: PeerMessageID) { out.writeInteger(i.rawValue) }
        func request(_ r: BlockRequest) {
            out.writeInteger(r.piece)
            out.writeInteger(r.begin)
            out.writeInteger(r.length)
        }
        func hashHeader(_ h: HashRequest) {
            _ = withUnsafeBytes(of: h.piecesRoot) { out.writeBytes($0) }
            out.writeInteger(h.baseLayer)
            out.writeInteger(h.index)
            out.writeInteger(h.length)
            out.writeInteger(h.proofLayers)
        }
        switch self {
        case .keepAlive: break
        case .choke: id(.choke)
        case .unchoke: id(.unchoke)
        case .interested: id(.interested)
        case .notInterested: id(.notInterested)
        case .have(let i): id(.have); out.writeInteger(i)
        case .bitfield(let b): id(.bitfield); out.writeImmutableBuffer(b)
        case .request(let r): id(.request); request(r)
        case .piece(let p, let b, let block): id(.piece); out.writeInteger(p); out.writeInteger(b); out.writeImmutableBuffer(block)
        case .cancel(let r): id(.cancel); request(r)
        case .port(let p): id(.port); out.writeInteger(p)
        case .suggestPiece(let i): id(.suggestPiece); out.writeInteger(i)
        case .haveAll: id(.haveAll)
        case .haveNone: id(.haveNone)
        case .rejectRequest(let r): id(.rejectRequest); request(r)
        case .allowedFast(let i): id(.allowedFast); out.writeInteger(i)
        case .extended(let e, let p): id(.extended); out.writeInteger(e); out.writeImmutableBuffer(p)
        case .hashRequest(let h): id(.hashRequest); hashHeader(h)
        case .hashes(let h, let hashes): id(.hashes); hashHeader(h); out.writeImmutableBuffer(hashes)
        case .hashReject(let h): id(.hashReject); hashHeader(h)
        case .unknown(let i, let p): out.writeInteger(i); out.writeImmutableBuffer(p)
        }
    }
}
