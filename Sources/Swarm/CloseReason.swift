import PeerWire

/// Why a peer connection ends. The descriptions are the words `--json` `peer_closed` events,
/// logs and the test suites read: keep them as they are.
public enum CloseReason: Equatable, Sendable, CustomStringConvertible {
    // Before or at the handshake.
    case tooManyPeers
    case displaced
    case noHandshake
    case connectedToOurselves
    case tooManyFromAddress(String)
    case unknownInfoHash
    case banned(FetchBanReason)
    case messageBeforeHandshake
    // Protocol violations while serving.
    case fastMessageWithoutFast
    case unsolicitedPiece
    case bothSeeds
    case invalidRequest(BlockRequest)
    case extensionWithoutProtocol
    case malformedExtensionHandshake
    case malformedMetadataMessage
    /// A `ut_pex` message refused (too large, too frequent, malformed): the words say which.
    case pex(String)
    case idle(seconds: Int)
    // From elsewhere.
    /// The download decided it (its own reasons, `FetchCloseReason`).
    case download(FetchCloseReason)
    /// The decoder refused the bytes (a length past the limit, not BitTorrent, the receive
    /// budget), or the socket failed.
    case error(String)
    case shuttingDown
    /// The seeder stopped seeding the torrent (a site's replaced version after its grace period).
    case torrentRemoved
    case closedByPeer

    public var description: String {
        switch self {
        case .tooManyPeers: "too many peers"
        case .displaced: "displaced: no handshake while the seeder is full"
        case .noHandshake: "no handshake in time"
        case .connectedToOurselves: "connected to ourselves"
        case .tooManyFromAddress(let host): "too many connections from \(host)"
        case .unknownInfoHash: "unknown info hash"
        case .banned(let why): "banned: \(why)"
        case .messageBeforeHandshake: "message before handshake"
        case .fastMessageWithoutFast: "fast-extension message without the fast extension"
        case .unsolicitedPiece: "sent a piece we never requested"
        case .bothSeeds: "both sides are seeds"
        case .invalidRequest(let r): "invalid request (piece \(r.piece), begin \(r.begin), length \(r.length))"
        case .extensionWithoutProtocol: "extension message without the extension protocol"
        case .malformedExtensionHandshake: "malformed extension handshake"
        case .malformedMetadataMessage: "malformed ut_metadata message"
        case .pex(let why): why
        case .idle(let seconds): "idle for \(seconds) s"
        case .download(let why): why.description
        case .error(let why): why
        case .shuttingDown: "shutting down"
        case .torrentRemoved: "torrent no longer seeded"
        case .closedByPeer: "closed by peer"
        }
    }
}
