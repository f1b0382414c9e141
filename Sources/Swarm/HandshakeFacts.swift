import NIOCore
import PeerWire

/// What a handshake's info hash names, as the seeder knows it. The handler looks it up;
/// every decision on it is `PeerConnection`'s.
enum HandshakeTarget {
    case torrent(SeedTorrent)
    case download(DownloadFacts)
    case unknown
}

/// A download, as a connection's handshake needs to know it.
struct DownloadFacts {
    /// The first 20 bytes of its v2 info hash, if it has one.
    var v2Short: [UInt8]?
    /// Nil while its metadata is being fetched.
    var name: String?
    /// Set once it is served (its data checked).
    var torrent: SeedTorrent?
    /// The metadata's private flag (nil while the metadata is being fetched).
    var isPrivate: Bool? = nil
    /// Why the peer's host is banned from it, if it is.
    var banned: FetchBanReason?
}

struct HandshakeFacts {
    var handshake: Handshake
    var target: HandshakeTarget
    var ourPeerID: [UInt8]
    /// The peer's IP address, as text (for limits) and as bytes (told back in `yourip`).
    var host: String
    var peerAddress: [UInt8]?
    /// Handshaken connections already open from `host`, and how many are allowed.
    var fromSameHost: Int
    var maxPerHost: Int
    /// For PEX: the peer's port, this end's address, and the port this host listens on.
    var peerPort: UInt16? = nil
    var localAddress: [UInt8]? = nil
    var listenPort: UInt16? = nil
}
