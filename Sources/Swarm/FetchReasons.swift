import PeerWire

/// Why a download bans a peer's host (for the rest of the download). The descriptions are
/// what users and tests read in events and logs.
public enum FetchBanReason: Equatable, Sendable, CustomStringConvertible {
    /// A piece sent by this peer alone did not verify (`PieceCheck`'s words).
    case pieceMismatch(String)
    case metadataPieceSize(piece: Int)
    case metadataHash
    case layerHashes(path: String)

    public var description: String {
        switch self {
        case .pieceMismatch(let why): why
        case .metadataPieceSize(let piece): "metadata piece \(piece) has the wrong size"
        case .metadataHash: "metadata does not match the info hash"
        case .layerHashes(let path): "hashes for \(path) do not match its pieces root"
        }
    }
}

/// Why a download closes a connection.
public enum FetchCloseReason: Equatable, Sendable, CustomStringConvertible {
    case malformedBitfield
    case havePastEnd(piece: UInt32)
    case unrequestedBlock(BlockRequest)
    case banned(FetchBanReason)
    /// Two seeds have nothing to say to each other.
    case bothSeeds

    public var description: String {
        switch self {
        case .malformedBitfield: "malformed bitfield"
        case .havePastEnd(let i): "have for piece \(i), past the end"
        case .unrequestedBlock(let r): "sent a block we did not request (piece \(r.piece), offset \(r.begin), length \(r.length))"
        case .banned(let why): "banned: \(why)"
        case .bothSeeds: "both sides are seeds"
        }
    }
}
