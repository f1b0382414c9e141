import Hashing
import NIOCore

public enum PeerWireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The first bytes are not `0x13 "BitTorrent protocol"` (an encrypted handshake, HTTP, noise).
    case notBitTorrent
    case messageTooLong(length: UInt32, limit: Int)
    case wrongLength(id: UInt8, length: Int)

    public var description: String {
        switch self {
        case .notBitTorrent: "not a BitTorrent handshake (encrypted or another protocol)"
        case .messageTooLong(let n, let limit): "message of \(n) bytes exceeds the \(limit)-byte limit"
        case .wrongLength(let id, let n): "message id \(id) with a payload of \(n) bytes"
        }
    }
}

public enum PeerWireFrame: Sendable, Equatable {
    case handshake(Handshake)
    case message(PeerMessage)
}

/// Decodes the handshake, then length-prefixed messages. Every length is checked against
/// `maxMessageLength` before anything is buffered for it; fixed-size messages must have
/// exactly their size. Feed it bytes as they arrive: it returns nil until a whole frame
/// is there.
public struct PeerWireDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = PeerWireFrame

    /// A piece message carries at most one 16 KiB block; bitfields and extension
    /// messages of large torrents are the other big ones.
    public static let defaultMaxMessageLength = 1 << 20

    private enum State { case protocolHeader, handshakeRest, messages }
    private var state = State.protocolHeader
    public let maxMessageLength: Int

    public init(maxMessageLength: Int = PeerWireDecoder.defaultMaxMessageLength, expectHandshake: Bool = true) {
        self.maxMessageLength = maxMessageLength
        self.state = expectHandshake ? .protocolHeader : .messages
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> PeerWireFrame? {
        switch state {
        case .protocolHeader:
            // Judge the first bytes as soon as they arrive: an encrypted (MSE) handshake
            // must be refused at once so the peer falls back to plaintext quickly.
            let n = min(buffer.readableBytes, 20)
            guard n > 0 else { return nil }
            let seen = buffer.getBytes(at: buffer.readerIndex, length: n)!
            guard seen[...] == Handshake.protocolHeader[0..<n] else { throw PeerWireError.notBitTorrent }
            guard n == 20 else { return nil }
            state = .handshakeRest
            return try decode(buffer: &buffer)
        case .handshakeRest:
            guard buffer.readableBytes >= Handshake.length else { return nil }
            buffer.moveReaderIndex(forwardBy: 20)
            let reserved = buffer.readBytes(length: 8)!
            let hash = buffer.readBytes(length: 20)!
            let peer = buffer.readBytes(length: 20)!
            state = .messages
            return .handshake(Handshake(reserved: Reserved(bytes: reserved), infoHash: hash, peerID: peer))
        case .messages:
            guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
            guard length <= maxMessageLength else { throw PeerWireError.messageTooLong(length: length, limit: maxMessageLength) }
            guard buffer.readableBytes >= 4 + Int(length) else { return nil }
            buffer.moveReaderIndex(forwardBy: 4)
            if length == 0 { return .message(.keepAlive) }
            var body = buffer.readSlice(length: Int(length))!
            return .message(try Self.message(&body))
        }
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> PeerWireFrame? {
        try decode(buffer: &buffer)
    }

    private static func message(_ body: inout ByteBuffer) throws -> PeerMessage {
        let rawID = body.readInteger(as: UInt8.self)!
        let n = body.readableBytes
        func exactly(_ size: Int) throws { guard n == size else { throw PeerWireError.wrongLength(id: rawID, length: n) } }
        func request() throws -> BlockRequest {
            try exactly(12)
            return BlockRequest(piece: body.readInteger()!, begin: body.readInteger()!, length: body.readInteger()!)
        }
        func hashHeader() -> HashRequest {
            let root = SHA256Digest(bytes: body.readBytes(length: 32)!)!
            return HashRequest(piecesRoot: root, baseLayer: body.readInteger()!, index: body.readInteger()!,
                               length: body.readInteger()!, proofLayers: body.readInteger()!)
        }
        guard let id = PeerMessageID(rawValue: rawID) else { return .unknown(id: rawID, payload: body) }
        switch id {
        case .choke: try exactly(0); return .choke
        case .unchoke: try exactly(0); return .unchoke
        case .interested: try exactly(0); return .interested
        case .notInterested: try exactly(0); return .notInterested
        case .have: try exactly(4); return .have(body.readInteger()!)
        case .bitfield: return .bitfield(body)
        case .request: return .request(try request())
        case .piece:
            guard n >= 8 else { throw PeerWireError.wrongLength(id: rawID, length: n) }
            let piece: UInt32 = body.readInteger()!, begin: UInt32 = body.readInteger()!
            return .piece(piece: piece, begin: begin, block: body)
        case .cancel: return .cancel(try request())
        case .port: try exactly(2); return .port(body.readInteger()!)
        case .suggestPiece: try exactly(4); return .suggestPiece(body.readInteger()!)
        case .haveAll: try exactly(0); return .haveAll
        case .haveNone: try exactly(0); return .haveNone
        case .rejectRequest: return .rejectRequest(try request())
        case .allowedFast: try exactly(4); return .allowedFast(body.readInteger()!)
        case .extended:
            guard n >= 1 else { throw PeerWireError.wrongLength(id: rawID, length: n) }
            let e: UInt8 = body.readInteger()!
            return .extended(id: e, payload: body)
        case .hashRequest: try exactly(48); return .hashRequest(hashHeader())
        case .hashReject: try exactly(48); return .hashReject(hashHeader())
        case .hashes:
            guard n >= 48, (n - 48) % 32 == 0 else { throw PeerWireError.wrongLength(id: rawID, length: n) }
            let h = hashHeader()
            return .hashes(h, hashes: body)
        }
    }
}
