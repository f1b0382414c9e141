import NIOCore
import PeerWire

/// One peer connection's whole life, seeding and fetching alike: handshaking → open
/// (serving a torrent, feeding a download, or both) → closed. Pure: events and `now` in,
/// actions out; `PeerHandler` only carries the actions out, so this is tested with a
/// manual clock and no sockets.
///
/// Serving is `PeerSession`'s work; messages for a download are handed on untouched
/// (`toDownload`), since `FetchMachine` decides on them. Once a close is decided nothing
/// more is processed, and `close` is returned exactly once.
struct PeerConnection {
    enum Event {
        case handshake(HandshakeFacts)
        /// `downloadComplete`: the download this connection feeds has everything (only then
        /// do its have-messages reach the seeding side, which closes seed-to-seed links).
        case message(PeerMessage, downloadComplete: Bool)
        /// The socket read is done: the requests that came in it are read together.
        case readComplete
        case writable(Bool)
        case blockRead(BlockRequest, ByteBuffer)
        case blockFailed(BlockRequest)
        /// The choker's decision.
        case choke(Bool)
        case tick
        case handshakeTimeout
        /// The download's torrent is known now: serve it here too.
        case attach(SeedTorrent)
        /// Decided elsewhere: shutdown, displacement, the download, a decoder or socket error.
        case close(CloseReason)
        case socketClosed
    }

    enum Action: Equatable {
        case sendHandshake(infoHash: [UInt8])
        case send(PeerMessage)
        /// Read these blocks of `torrent`, then feed `blockRead`/`blockFailed` for each.
        case read([BlockRequest])
        /// The peer's interest changed: tell the choker.
        case interested(Bool)
        /// The handshake is done (report it; the connection no longer counts as handshaking).
        case connected(name: String, v2: Bool)
        /// A session serves `torrent` on this connection now (the torrent counts its peers).
        case serving
        case joinDownload
        case toDownload(PeerMessage)
        /// Close the socket; the connection gives up its place (and its upload slot) now.
        case close(CloseReason)
        /// The socket is gone: undo `serving` and `joinDownload`, report how it ended.
        case left(served: Bool, downloading: Bool, reason: CloseReason)
    }

    enum Phase: Equatable { case handshaking, open, closed }

    /// We sent our handshake first (an outgoing connection): the peer's is not answered.
    let outgoing: Bool
    private(set) var phase = Phase.handshaking
    private(set) var closeReason: CloseReason?
    private(set) var session: PeerSession?
    private(set) var downloading = false
    /// The peer's reserved bits and the connection's version, from the handshake on.
    private(set) var reserved = Reserved()
    private(set) var isV2 = false
    private var peerAddress: [UInt8]?
    /// Replayed to a session that starts after it arrived (a magnet download's link).
    private var peerExtensionHandshake: ByteBuffer?
    private var reportedLeft = false

    init(outgoing: Bool) { self.outgoing = outgoing }

    var torrent: SeedTorrent? { session?.torrent }

    mutating func handle(_ event: Event, now: Double) -> [Action] {
        if case .socketClosed = event { return socketClosed() }
        guard phase != .closed else { return [] }
        switch event {
        case .handshake(let facts):
            guard phase == .handshaking else { return close(.messageBeforeHandshake) }
            return handshake(facts, now: now)
        case .message(let m, let downloadComplete):
            guard phase == .open else { return close(.messageBeforeHandshake) }
            return message(m, downloadComplete: downloadComplete, now: now)
        case .readComplete:
            return serve { $0.startReads() }
        case .writable(let w):
            return serve { $0.setWritable(w) }
        case .blockRead(let r, let data):
            return serve { $0.blockRead(r, data: data, now: now) }
        case .blockFailed(let r):
            return serve { $0.blockFailed(r) }
        case .choke(let c):
            return serve { $0.setChoking(c) }
        case .tick:
            return serve { $0.tick(now: now) }
        case .handshakeTimeout:
            return phase == .handshaking ? close(.noHandshake) : []
        case .attach(let t):
            return attach(t, now: now)
        case .close(let reason):
            return close(reason)
        case .socketClosed:
            return []  // handled above
        }
    }

    // MARK: handshake

    private mutating func handshake(_ f: HandshakeFacts, now: Double) -> [Action] {
        let h = f.handshake
        // A peer list (the DHT, a tracker) can name this very node.
        if h.peerID == f.ourPeerID { return close(.connectedToOurselves) }
        // One address must not take every peer slot.
        if f.fromSameHost >= f.maxPerHost { return close(.tooManyFromAddress(f.host)) }
        switch f.target {
        case .unknown:
            return close(.unknownInfoHash)
        case .torrent(let t):
            let v2Short = t.metainfo.v2InfoHash.map { Array($0.bytes.prefix(20)) }
            var v2 = h.infoHash == v2Short
            var reply = h.infoHash
            // BEP 52: a peer reaching a hybrid by its v1 hash and setting the upgrade bit
            // gets the v2 hash back, and the connection is v2 from then on.
            if !v2, t.metainfo.version == .hybrid, h.reserved.v2Upgrade, let v2Short {
                v2 = true
                reply = v2Short
            }
            var out: [Action] = outgoing ? [] : [.sendHandshake(infoHash: reply)]
            open(h.reserved, v2: v2, peerAddress: f.peerAddress)
            out += [.connected(name: t.metainfo.name, v2: v2)]
            return out + startServing(t, now: now)
        case .download(let d):
            if let why = d.banned { return close(.banned(why)) }
            var v2 = h.infoHash == d.v2Short
            var reply = h.infoHash
            if !v2, let v2Short = d.v2Short, h.reserved.v2Upgrade, !outgoing {
                v2 = true
                reply = v2Short
            }
            var out: [Action] = outgoing ? [] : [.sendHandshake(infoHash: reply)]
            open(h.reserved, v2: v2, peerAddress: f.peerAddress)
            downloading = true
            out += [.connected(name: d.name ?? "(fetching metadata)", v2: v2), .joinDownload]
            if let t = d.torrent { return out + startServing(t, now: now) }
            return out + openingWithoutTorrent()
        }
    }

    private mutating func open(_ peer: Reserved, v2: Bool, peerAddress: [UInt8]?) {
        phase = .open
        reserved = peer
        isV2 = v2
        self.peerAddress = peerAddress
    }

    private mutating func startServing(_ t: SeedTorrent, now: Double) -> [Action] {
        session = PeerSession(torrent: t, isV2: isV2, peer: reserved, peerAddress: peerAddress, now: now)
        return [.serving] + serve { $0.start(now: now) }
    }

    /// A magnet download before its metadata: we have nothing yet, and say how to reach us.
    private func openingWithoutTorrent() -> [Action] {
        var ours = ExtensionHandshake()
        ours.messages = ["ut_metadata": PeerSession.utMetadataID, "upload_only": PeerSession.uploadOnlyID]
        ours.client = "webseed \(webseedClientVersion)"
        ours.requestQueue = PeerSession.maxRequestQueue
        ours.yourIP = peerAddress
        var out: [Action] = []
        if reserved.fast { out.append(.send(.haveNone)) }
        if reserved.extensionProtocol { out.append(.send(.extended(id: 0, payload: ByteBuffer(bytes: ours.encode())))) }
        return out
    }

    // MARK: open

    private mutating func message(_ m: PeerMessage, downloadComplete: Bool, now: Double) -> [Action] {
        var out: [Action] = []
        if downloading {
            let (forDownload, forSession) = route(m, downloadComplete: downloadComplete)
            if forDownload { out.append(.toDownload(m)) }
            guard forSession else { return out }
            guard session != nil else { return out + refuseWithoutTorrent(m) }
        }
        guard session != nil else { return close(.messageBeforeHandshake) }
        let wasInterested = session!.peerInterested
        out += serve { $0.receive(m, now: now) }
        if phase != .closed, let s = session, s.peerInterested != wasInterested { out.append(.interested(s.peerInterested)) }
        return out
    }

    /// What a download's connection hands the download, and what the seeding side sees too.
    private mutating func route(_ m: PeerMessage, downloadComplete: Bool) -> (download: Bool, session: Bool) {
        switch m {
        case .piece, .rejectRequest, .hashes, .hashReject, .choke, .unchoke:
            return (true, false)
        case .bitfield, .have, .haveAll, .haveNone:
            return (true, downloadComplete)  // only a finished download closes seed-to-seed links
        case .extended(let id, let payload):
            if id == 0 { peerExtensionHandshake = payload }
            let metadata = id == PeerSession.utMetadataID
            let request = metadata && Self.isMetadataRequest(payload)
            return (id == 0 || metadata, id == 0 || request)
        default:
            return (false, true)
        }
    }

    /// Nothing to serve yet (the metadata is being fetched): requests are refused, the rest waits.
    private func refuseWithoutTorrent(_ m: PeerMessage) -> [Action] {
        switch m {
        case .request(let r):
            return reserved.fast ? [.send(.rejectRequest(r))] : []
        case .extended(PeerSession.utMetadataID, let payload):
            guard case .request(let piece)? = try? MetadataMessage.decode(Array(buffer: payload)),
                  let h = peerExtensionHandshake.flatMap({ try? ExtensionHandshake(decoding: Array(buffer: $0)) }),
                  let theirs = h.messages["ut_metadata"], theirs != 0 else { return [] }
            return [.send(.extended(id: theirs, payload: ByteBuffer(bytes: MetadataMessage.reject(piece: piece).encode())))]
        default:
            return []
        }
    }

    private static func isMetadataRequest(_ payload: ByteBuffer) -> Bool {
        if case .request? = try? MetadataMessage.decode(Array(buffer: payload)) { true } else { false }
    }

    private mutating func attach(_ t: SeedTorrent, now: Double) -> [Action] {
        guard phase == .open, session == nil else { return [] }
        session = PeerSession(torrent: t, isV2: isV2, peer: reserved, peerAddress: peerAddress, now: now)
        if let h = peerExtensionHandshake { _ = session!.receive(.extended(id: 0, payload: h), now: now) }
        return [.serving]
    }

    /// Runs the seeding side; its close is the connection's.
    private mutating func serve(_ step: (inout PeerSession) -> [PeerSession.Action]) -> [Action] {
        guard session != nil else { return [] }
        var out: [Action] = []
        for action in step(&session!) {
            switch action {
            case .send(let m): out.append(.send(m))
            case .read(let batch): out.append(.read(batch))
            case .close(let reason): return out + close(reason)
            }
        }
        return out
    }

    // MARK: closing

    mutating func close(_ reason: CloseReason) -> [Action] {
        guard phase != .closed else { return [] }
        phase = .closed
        closeReason = reason
        return [.close(reason)]
    }

    private mutating func socketClosed() -> [Action] {
        guard !reportedLeft else { return [] }
        reportedLeft = true
        let out = close(.closedByPeer)
        return out + [.left(served: session != nil, downloading: downloading, reason: closeReason ?? .closedByPeer)]
    }
}
