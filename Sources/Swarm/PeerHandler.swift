import NIOCore
import NIOPosix
import PeerWire
import Storage

/// One peer connection: handshake and dispatch by info hash, then a `PeerSession` whose
/// actions it carries out. Lives on the seeder's event loop.
final class PeerHandler: ChannelInboundHandler, FetchLink {
    typealias InboundIn = PeerWireFrame
    typealias OutboundOut = ByteBuffer

    private let core: SeederCore
    private let threadPool: NIOThreadPool
    /// For connections we open: the hash we announce ourselves with.
    private let outgoingHash: [UInt8]?
    /// Set the v1→v2 upgrade bit in our handshake (a hybrid reached by its v1 hash).
    private let outgoingUpgrade: Bool
    /// The download this connection serves, if it is one (see `Fetch`).
    private var fetch: Fetch?
    private var peerReserved = Reserved()
    private var peerIP: [UInt8]?
    private var connectionIsV2 = false
    /// The peer's extension handshake, replayed to a session created after it arrived.
    private var peerExtensionHandshake: ByteBuffer?
    private var context: ChannelHandlerContext?
    private var session: PeerSession?
    private var torrent: SeedTorrent?
    private(set) var address = "?"
    /// Set by the first close decision; no message is processed after it.
    private var closeReason: String?
    /// In `core.connections` (and maybe the choker) until `leaveCore`.
    private var registered = false
    private var handshakeTimer: Scheduled<Void>?

    /// What the decoder in front holds of unfinished messages, released at the end.
    private let account: ReceiveBudget.Account

    init(core: SeederCore, threadPool: NIOThreadPool, outgoingHash: [UInt8]?, upgrade: Bool = false, account: ReceiveBudget.Account) {
        self.core = core
        self.account = account
        self.threadPool = threadPool
        self.outgoingHash = outgoingHash
        self.outgoingUpgrade = upgrade
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        address = context.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
    }

    func channelActive(context: ChannelHandlerContext) {
        address = context.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? address
        // At the limit, a newcomer displaces the oldest connection that has not finished its
        // handshake: a flood of silent sockets cannot lock real peers out.
        if core.connections.count >= core.configuration.maxPeers {
            guard let oldest = core.handshaking.first, let victim = core.connections[oldest] else {
                closeReason = "too many peers"
                context.close(promise: nil)
                return
            }
            core.handshaking.removeFirst()
            victim.close(reason: "displaced: no handshake while the seeder is full")
        }
        core.connections[ObjectIdentifier(self)] = self
        registered = true
        core.handshaking.append(ObjectIdentifier(self))
        handshakeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: core.configuration.handshakeTimeout) { [weak self] in
            if self?.session == nil { self?.close(reason: "no handshake in time") }
        }
        if let hash = outgoingHash { sendHandshake(hash: hash, context: context) }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        core.receiveBudget.release(account)
        if session != nil { torrent?.peerJoined(-1) }
        if registered {
            leaveCore()
            fetch?.left(self)
            if session != nil { core.onEvent(.peerClosed(address: address, reason: closeReason ?? "closed by peer")) }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close(reason: "\(error)")
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Frames decoded from the same read as a fatal message still arrive: they are ignored.
        guard closeReason == nil else { return }
        switch unwrapInboundIn(data) {
        case .handshake(let h):
            handshake(h, context: context)
        case .message(let m):
            if let fetch {
                guard routeToFetch(m, fetch) else { return }
                guard session != nil else {
                    // Nothing to serve yet: requests are refused, the rest waits for the metadata.
                    if case .request(let r) = m, peerReserved.fast { perform([.send(.rejectRequest(r))]) }
                    if case .extended(let id, let payload) = m, id == PeerSession.utMetadataID,
                       case .request(let piece)? = try? MetadataMessage.decode(Array(buffer: payload)),
                       let h = peerExtensionHandshake.flatMap({ try? ExtensionHandshake(decoding: Array(buffer: $0)) }),
                       let theirs = h.messages["ut_metadata"], theirs != 0 {
                        perform([.send(.extended(id: theirs, payload: ByteBuffer(bytes: MetadataMessage.reject(piece: piece).encode())))])
                    }
                    return
                }
            }
            guard session != nil else { close(reason: "message before handshake"); return }
            let wasInterested = session!.peerInterested
            perform(session!.receive(m, now: core.now))
            if closeReason == nil, let s = session, s.peerInterested != wasInterested {
                core.interestChanged(self, interested: s.peerInterested)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if session != nil, closeReason == nil { perform(session!.startReads()) }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        guard session != nil else { return }
        perform(session!.setWritable(context.channel.isWritable))
    }

    private func handshake(_ h: Handshake, context: ChannelHandlerContext) {
        // A peer list (the DHT, a tracker) can name this very node.
        if h.peerID == core.peerID { close(reason: "connected to ourselves"); return }
        // One address must not take every peer slot.
        if core.handshakenConnections(from: host) >= core.configuration.maxPeersPerAddress {
            close(reason: "too many connections from \(host)")
            return
        }
        if core.torrents[h.infoHash] == nil, let f = core.fetches[h.infoHash] { return fetchHandshake(h, f, context: context) }
        guard let t = core.torrents[h.infoHash] else { close(reason: "unknown info hash"); return }
        let v2Short = t.metainfo.v2InfoHash.map { Array($0.bytes.prefix(20)) }
        var isV2 = h.infoHash == v2Short
        var replyHash = h.infoHash
        // BEP 52: a peer reaching a hybrid by its v1 hash and setting the upgrade bit gets
        // the v2 hash back, and the connection is v2 from then on.
        if !isV2, t.metainfo.version == .hybrid, h.reserved.v2Upgrade, let v2 = v2Short {
            isV2 = true
            replyHash = v2
        }
        if outgoingHash == nil { sendHandshake(hash: replyHash, context: context) }
        handshakeTimer?.cancel()
        core.handshaking.removeAll { $0 == ObjectIdentifier(self) }
        torrent = t
        let peerIP = context.remoteAddress.flatMap { a -> [UInt8]? in
            switch a {
            case .v4(let v4): withUnsafeBytes(of: v4.address.sin_addr.s_addr) { Array($0) }
            case .v6(let v6): withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            default: nil
            }
        }
        session = PeerSession(torrent: t, isV2: isV2, peer: h.reserved, peerAddress: peerIP, now: core.now)
        t.peerJoined(1)
        core.onEvent(.peerConnected(address: address, torrent: t.metainfo.name, v2: isV2))
        perform(session!.start(now: core.now))
    }

    /// A connection for a download: the torrent may not be known yet (magnet).
    private func fetchHandshake(_ h: Handshake, _ f: Fetch, context: ChannelHandlerContext) {
        let host = context.remoteAddress?.ipAddress ?? address
        guard !f.isBanned(host) else { close(reason: "banned: \(f.banned[host] ?? "")"); return }
        var isV2 = h.infoHash == f.v2Short
        var replyHash = h.infoHash
        if !isV2, f.v2Short != nil, h.reserved.v2Upgrade, outgoingHash == nil {
            isV2 = true
            replyHash = f.v2Short!
        }
        if outgoingHash == nil { sendHandshake(hash: replyHash, context: context) }
        handshakeTimer?.cancel()
        core.handshaking.removeAll { $0 == ObjectIdentifier(self) }
        peerReserved = h.reserved
        connectionIsV2 = isV2
        peerIP = ipBytes(context.remoteAddress)
        fetch = f
        f.joined(self)
        core.onEvent(.peerConnected(address: address, torrent: f.metainfo?.name ?? "(fetching metadata)", v2: isV2))
        if let t = f.torrent {
            torrent = t
            session = PeerSession(torrent: t, isV2: isV2, peer: h.reserved, peerAddress: peerIP, now: core.now)
            t.peerJoined(1)
            perform(session!.start(now: core.now))
        } else {
            var ours = ExtensionHandshake()
            ours.messages = ["ut_metadata": PeerSession.utMetadataID, "upload_only": PeerSession.uploadOnlyID]
            ours.client = "webseed \(webseedClientVersion)"
            ours.requestQueue = PeerSession.maxRequestQueue
            ours.yourIP = peerIP
            var first: [PeerSession.Action] = []
            if h.reserved.fast { first.append(.send(.haveNone)) }
            if h.reserved.extensionProtocol { first.append(.send(.extended(id: 0, payload: ByteBuffer(bytes: ours.encode())))) }
            perform(first)
        }
    }

    /// Hands the download side what it needs; false when the seeding side has nothing to add.
    private func routeToFetch(_ m: PeerMessage, _ f: Fetch) -> Bool {
        switch m {
        case .piece, .rejectRequest, .hashes, .hashReject, .choke, .unchoke:
            f.receive(m, from: self, now: core.now)
            return false
        case .bitfield, .have, .haveAll, .haveNone:
            f.receive(m, from: self, now: core.now)
            return f.phase == .complete  // only a finished download closes seed-to-seed connections
        case .extended(let id, let payload):
            if id == 0 { peerExtensionHandshake = payload }
            if id == 0 || id == PeerSession.utMetadataID { f.receive(m, from: self, now: core.now) }
            if id == PeerSession.utMetadataID, case .request? = try? MetadataMessage.decode(Array(buffer: payload)) { return true }
            return id == 0
        default:
            return true
        }
    }

    private func ipBytes(_ a: SocketAddress?) -> [UInt8]? {
        switch a {
        case .v4(let v4)?: withUnsafeBytes(of: v4.address.sin_addr.s_addr) { Array($0) }
        case .v6(let v6)?: withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        default: nil
        }
    }

    private func sendHandshake(hash: [UInt8], context: ChannelHandlerContext) {
        var reserved = Reserved()
        reserved.extensionProtocol = true
        reserved.fast = true
        reserved.v2Upgrade = outgoingUpgrade
        var buffer = context.channel.allocator.buffer(capacity: Handshake.length)
        Handshake(reserved: reserved, infoHash: hash, peerID: core.peerID).encode(into: &buffer)
        context.writeAndFlush(NIOAny(buffer), promise: nil)
    }

    // MARK: actions

    private func perform(_ actions: [PeerSession.Action]) {
        guard let context else { return }
        var wrote = false
        for action in actions {
            switch action {
            case .send(let m):
                write(m, context: context)
                wrote = true
            case .read(let batch):
                read(batch, context: context)
            case .close(let reason):
                if wrote { context.flush() }
                close(reason: reason.description)
                return
            }
        }
        if wrote { context.flush() }
    }

    private func write(_ m: PeerMessage, context: ChannelHandlerContext) {
        if case .piece(let piece, let begin, let block) = m {
            // Header and block as two buffers: the block is never copied again.
            var header = context.channel.allocator.buffer(capacity: 13)
            header.writeInteger(UInt32(9 + block.readableBytes))
            header.writeInteger(PeerMessageID.piece.rawValue)
            header.writeInteger(piece)
            header.writeInteger(begin)
            context.write(NIOAny(header), promise: nil)
            context.write(NIOAny(block), promise: nil)
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: m.wireLength)
        m.encode(into: &buffer)
        context.write(NIOAny(buffer), promise: nil)
    }

    private func read(_ requests: [BlockRequest], context: ChannelHandlerContext) {
        guard let torrent else { return }
        let allocator = context.channel.allocator
        // Hot data is served right here; only reads that would wait for the disk go to the pool.
        if let blocks = torrent.readBlocksIfCached(requests, allocator: allocator) {
            var actions: [PeerSession.Action] = []
            for (r, data) in zip(requests, blocks) {
                torrent.addUploaded(data.readableBytes)
                actions += session!.blockRead(r, data: data, now: core.now)
            }
            // May start more reads in turn; bounded by the session's read-ahead.
            perform(actions)
            return
        }
        let future = threadPool.runIfActive(eventLoop: context.eventLoop) { torrent.readBlocks(requests, allocator: allocator) }
        future.assumeIsolated().whenComplete { [weak self] result in
            guard let self, self.session != nil else { return }
            let results = (try? result.get()) ?? requests.map { _ in .failure(.storage(.unreadable("piece data", reason: "the disk threads stopped"))) }
            var actions: [PeerSession.Action] = []
            for (r, outcome) in zip(requests, results) {
                switch outcome {
                case .success(let data):
                    torrent.addUploaded(data.readableBytes)
                    actions += self.session!.blockRead(r, data: data, now: self.core.now)
                case .failure(let error):
                    if case .changedOnDisk(let path) = error {
                        self.core.onEvent(.fileChanged(torrent: torrent.metainfo.name, path: path))
                    }
                    actions += self.session!.blockFailed(r)
                }
            }
            self.perform(actions)
        }
    }

    func setChoking(_ choke: Bool) {
        guard session != nil else { return }
        perform(session!.setChoking(choke))
    }

    func tick(now: Double) {
        guard session != nil else { return }
        perform(session!.tick(now: now))
    }

    private var leftCore = false
    /// Forgets the connection in the core, the choker's entry with it: exactly once.
    private func leaveCore() {
        guard !leftCore else { return }
        leftCore = true
        core.removed(self)
    }

    // MARK: FetchLink

    var host: String { context?.remoteAddress?.ipAddress ?? address }
    var handshaken: Bool { session != nil || fetch != nil }
    var isV2: Bool { connectionIsV2 }
    var fast: Bool { peerReserved.fast }

    func send(_ messages: [PeerMessage]) {
        perform(messages.map { .send($0) })
    }

    func disconnect(reason: String) { close(reason: reason) }

    func attach(_ t: SeedTorrent) {
        guard session == nil else { return }
        torrent = t
        session = PeerSession(torrent: t, isV2: connectionIsV2, peer: peerReserved, peerAddress: peerIP, now: core.now)
        t.peerJoined(1)
        if let h = peerExtensionHandshake { _ = session!.receive(.extended(id: 0, payload: h), now: core.now) }
    }

    @discardableResult
    func close(reason: String) -> EventLoopFuture<Void> {
        if closeReason == nil {
            closeReason = reason
            // Its upload slot goes to someone else now, not when the socket is gone.
            if registered { leaveCore() }
        }
        guard let context else { return core.loop.makeSucceededVoidFuture() }
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.close(promise: promise)
        return promise.futureResult.recover { _ in }
    }
}
