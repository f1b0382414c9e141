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
        /// PEX: the torrent's connections now (see `PEXState.message`).
        case pex(connected: [PEXEntry])
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
        /// PEX named peers new to this connection (`refused`: entries not taken).
        case learned([PEXEntry], refused: Int)
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
    /// Peer exchange, from the handshake on (nil without the peer's address).
    private(set) var pex: PEXState?
    /// The peer said it is a seed (have-all, or `upload_only`).
    private var peerIsSeed = false
    private var listenPort: UInt16?

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
        case .pex(let connected):
            guard phase == .open, let m = pex?.message(connected: connected, now: now), let id = pex?.peerID else { return [] }
            return [.send(.extended(id: id, payload: ByteBuffer(bytes: m.encode())))]
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
            open(h.reserved, v2: v2, facts: f, isPrivate: t.metainfo.isPrivate)
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
            open(h.reserved, v2: v2, facts: f, isPrivate: d.torrent?.metainfo.isPrivate ?? d.isPrivate)
            downloading = true
            out += [.connected(name: d.name ?? "(fetching metadata)", v2: v2), .joinDownload]
            if let t = d.torrent { return out + startServing(t, now: now) }
            return out + openingWithoutTorrent()
        }
    }

    private mutating func open(_ peer: Reserved, v2: Bool, facts f: HandshakeFacts, isPrivate: Bool?) {
        phase = .open
        reserved = peer
        isV2 = v2
        peerAddress = f.peerAddress
        listenPort = f.listenPort
        if let ip = f.peerAddress.map(PEXScope.unmapped) {
            var state = PEXState(peerIP: ip)
            state.allowed = isPrivate.map { !$0 }
            if outgoing, let port = f.peerPort { state.peerListen = PEXPeer(ip: ip, port: port) }
            if let port = f.listenPort, let local = f.localAddress.map(PEXScope.unmapped) { state.ours.insert(PEXPeer(ip: local, port: port)) }
            pex = state
        }
    }

    /// This connection as PEX names it to the torrent's other peers: where the peer listens,
    /// whether we reached it (so it accepts connections) and whether it is a seed.
    var pexEntry: PEXEntry? {
        guard phase == .open, let listen = pex?.peerListen else { return nil }
        var flags: PEXFlags = outgoing ? .reachable : []
        if peerIsSeed { flags.insert(.seed) }
        return PEXEntry(listen, flags: flags)
    }

    private mutating func startServing(_ t: SeedTorrent, now: Double) -> [Action] {
        session = PeerSession(torrent: t, isV2: isV2, peer: reserved, peerAddress: peerAddress, listenPort: listenPort, now: now)
        return [.serving] + serve { $0.start(now: now) }
    }

    /// A magnet download before its metadata: we have nothing yet, and say how to reach us.
    private func openingWithoutTorrent() -> [Action] {
        var ours = ExtensionHandshake()
        ours.messages = ["ut_metadata": PeerSession.utMetadataID, "upload_only": PeerSession.uploadOnlyID]
        // Before the metadata says whether the torrent is private, PEX is offered but
        // nothing is sent or taken (`PEXState.allowed`).
        if pex?.allowed != false { ours.messages[PEXMessage.extensionName] = PEXState.ourID }
        ours.listenPort = listenPort
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
        if case .extended(let id, let payload) = m, reserved.extensionProtocol, pex != nil {
            if id == PEXState.ourID { return pexReceived(payload, now: now) }
            if id == 0 { notePeerExtensionHandshake(payload) }
        }
        if case .haveAll = m { peerIsSeed = true }
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
        pex?.allowed = !t.metainfo.isPrivate
        session = PeerSession(torrent: t, isV2: isV2, peer: reserved, peerAddress: peerAddress, listenPort: listenPort, now: now)
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

    // MARK: peer exchange

    /// What PEX needs of the peer's extension handshake: its `ut_pex` id, its listening port
    /// (for a connection it made), whether it is a seed, and our address as it sees it.
    private mutating func notePeerExtensionHandshake(_ payload: ByteBuffer) {
        guard var state = pex, let h = try? ExtensionHandshake(decoding: Array(buffer: payload)) else { return }
        state.peerHandshake(h)
        if !outgoing, let port = h.listenPort { state.peerListen = PEXPeer(ip: state.peerIP, port: port) }
        if let ip = h.yourIP.map(PEXScope.unmapped), let port = listenPort { state.ours.insert(PEXPeer(ip: ip, port: port)) }
        if h.uploadOnly { peerIsSeed = true }
        pex = state
    }

    private mutating func pexReceived(_ payload: ByteBuffer, now: Double) -> [Action] {
        switch pex!.receive(Array(buffer: payload), now: now) {
        case .learned(let peers, let refused): return peers.isEmpty && refused == 0 ? [] : [.learned(peers, refused: refused)]
        case .ignored: return []
        case .close(let why): return close(.pex(why))
        }
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
