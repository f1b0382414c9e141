import NIOCore
import NIOPosix
import PeerWire
import Storage

/// One peer connection on the seeder's event loop: it feeds a `PeerConnection` what
/// happens (frames, timers, disk reads, the choker, the download) and carries out the
/// actions it returns. It decides nothing about the protocol.
final class PeerHandler: ChannelInboundHandler, FetchLink {
    typealias InboundIn = PeerWireFrame
    typealias OutboundOut = ByteBuffer

    private let core: SeederCore
    private let threadPool: NIOThreadPool
    /// For connections we open: the hash we announce ourselves with.
    private let outgoingHash: [UInt8]?
    /// Set the v1→v2 upgrade bit in our handshake (a hybrid reached by its v1 hash).
    private let outgoingUpgrade: Bool
    /// What the decoder in front holds of unfinished messages, released at the end.
    private let account: ReceiveBudget.Account
    private var machine: PeerConnection
    /// The download whose hash the handshake named (joined on `joinDownload`).
    private var fetch: Fetch?
    private var context: ChannelHandlerContext?
    private(set) var address = "?"
    /// In `core.connections` (and maybe the choker) until the connection closes.
    private var registered = false
    /// Set while carrying out `close`: nothing queued after it is carried out.
    private var closing = false
    private var handshakeTimer: Scheduled<Void>?

    init(core: SeederCore, threadPool: NIOThreadPool, outgoingHash: [UInt8]?, upgrade: Bool = false, account: ReceiveBudget.Account) {
        self.core = core
        self.threadPool = threadPool
        self.outgoingHash = outgoingHash
        self.outgoingUpgrade = upgrade
        self.account = account
        self.machine = PeerConnection(outgoing: outgoingHash != nil)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        address = context.remoteAddress.map(peerText) ?? "?"
    }

    /// The context holds this handler and the channel: kept, it would keep every closed
    /// connection's handler, pipeline and channel alive for ever (a cycle LeakSanitizer found).
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        address = context.remoteAddress.map(peerText) ?? address
        // At the limit, a newcomer displaces the oldest connection that has not finished its
        // handshake: a flood of silent sockets cannot lock real peers out.
        if core.connections.count >= core.configuration.maxPeers {
            guard let oldest = core.handshaking.first, let victim = core.connections[oldest] else {
                handle(.close(.tooManyPeers))
                return
            }
            core.handshaking.removeFirst()
            victim.close(.displaced)
        }
        core.connections[ObjectIdentifier(self)] = self
        registered = true
        core.handshaking.append(ObjectIdentifier(self))
        handshakeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: core.configuration.handshakeTimeout) { [weak self] in
            self?.handle(.handshakeTimeout)
        }
        if let hash = outgoingHash { sendHandshake(hash: hash, context: context) }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        handle(.socketClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        handle(.close(.error("\(error)")))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .handshake(let h):
            handle(.handshake(facts(for: h, context: context)))
        case .message(let m):
            handle(.message(m, downloadComplete: fetch?.phase == .complete))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        handle(.readComplete)
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        handle(.writable(context.channel.isWritable))
    }

    func setChoking(_ choke: Bool) { handle(.choke(choke)) }

    func tick(now: Double) { handle(.tick, now: now) }

    /// PEX: the torrent's connections (see `SeederCore.exchangePeers`).
    func exchangePeers(_ connected: [PEXEntry], now: Double) { handle(.pex(connected: connected), now: now) }

    /// This connection as PEX tells others of it (nil: not open, or where it listens is unknown).
    var pexEntry: PEXEntry? { machine.pexEntry }

    /// What PEX groups connections by: the download this connection feeds, or the torrent it serves.
    var swarm: ObjectIdentifier? {
        guard machine.phase == .open else { return nil }
        if let fetch { return ObjectIdentifier(fetch) }
        return machine.torrent.map { ObjectIdentifier($0) }
    }

    /// What the machine needs to decide on a handshake: the torrent or download its hash
    /// names, and what the seeder knows of the peer's host.
    private func facts(for h: Handshake, context: ChannelHandlerContext) -> HandshakeFacts {
        let target: HandshakeTarget
        if let t = core.torrents[h.infoHash] {
            target = .torrent(t)
        } else if let f = core.fetches[h.infoHash] {
            fetch = f
            target = .download(DownloadFacts(v2Short: f.v2Short, name: f.metainfo?.name, torrent: f.torrent, isPrivate: f.metainfo?.isPrivate,
                                             banned: f.banReason(host)))
        } else {
            target = .unknown
        }
        return HandshakeFacts(handshake: h, target: target, ourPeerID: core.peerID, host: host,
                              peerAddress: ipBytes(context.remoteAddress),
                              fromSameHost: core.handshakenConnections(from: host), maxPerHost: core.configuration.maxPeersPerAddress,
                              peerPort: context.remoteAddress?.port.map { UInt16($0) }, localAddress: ipBytes(context.localAddress),
                              listenPort: core.listenPort)
    }

    private func ipBytes(_ a: SocketAddress?) -> [UInt8]? {
        switch a {
        case .v4(let v4)?: withUnsafeBytes(of: v4.address.sin_addr.s_addr) { Array($0) }
        case .v6(let v6)?: withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        default: nil
        }
    }

    // MARK: actions

    private func handle(_ event: PeerConnection.Event, now: Double? = nil) {
        perform(machine.handle(event, now: now ?? core.now))
    }

    private func perform(_ actions: [PeerConnection.Action]) {
        guard let context else { return }
        var wrote = false
        for action in actions {
            // Nothing is carried out after a close but the goodbye of a gone socket.
            if closing, !action.isLeft { continue }
            switch action {
            case .sendHandshake(let hash):
                sendHandshake(hash: hash, context: context)
            case .send(let m):
                write(m, context: context)
                wrote = true
            case .read(let batch):
                read(batch, context: context)
            case .interested(let interested):
                core.interestChanged(self, interested: interested)
            case .connected(let name, let v2):
                handshakeTimer?.cancel()
                core.handshaking.removeAll { $0 == ObjectIdentifier(self) }
                core.onEvent(.peerConnected(address: address, torrent: name, v2: v2))
            case .serving:
                machine.torrent?.peerJoined(1)
            case .joinDownload:
                fetch?.joined(self)
            case .toDownload(let m):
                fetch?.receive(m, from: self, now: core.now)
            case .learned(let peers, let refused):
                // A download dials what it learns; a seed waits for peers to come to it.
                fetch?.learned(peers, refused: refused, from: address)
            case .close:
                if wrote { context.flush() }
                wrote = false
                closing = true
                // Its upload slot goes to someone else now, not when the socket is gone.
                if registered { core.removed(self) }
                context.close(promise: nil)
            case .left(let served, let downloading, let reason):
                core.receiveBudget.release(account)
                if served { machine.torrent?.peerJoined(-1) }
                guard registered else { break }
                if downloading { fetch?.left(self) }
                if served { core.onEvent(.peerClosed(address: address, reason: reason)) }
            }
        }
        if wrote { context.flush() }
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
        guard let torrent = machine.torrent else { return }
        let allocator = context.channel.allocator
        // Hot data is served right here; only reads that would wait for the disk go to the pool.
        if let blocks = torrent.readBlocksIfCached(requests, allocator: allocator) {
            var actions: [PeerConnection.Action] = []
            for (r, data) in zip(requests, blocks) {
                torrent.addUploaded(data.readableBytes)
                actions += machine.handle(.blockRead(r, data), now: core.now)
            }
            // May start more reads in turn; bounded by the session's read-ahead.
            perform(actions)
            return
        }
        let future = threadPool.runIfActive(eventLoop: context.eventLoop) { torrent.readBlocks(requests, allocator: allocator) }
        future.assumeIsolated().whenComplete { [weak self] result in
            guard let self else { return }
            let results = (try? result.get()) ?? requests.map { _ in .failure(.storage(.unreadable("piece data", reason: "the disk threads stopped"))) }
            var actions: [PeerConnection.Action] = []
            for (r, outcome) in zip(requests, results) {
                switch outcome {
                case .success(let data):
                    torrent.addUploaded(data.readableBytes)
                    actions += self.machine.handle(.blockRead(r, data), now: self.core.now)
                case .failure(let error):
                    if case .changedOnDisk(let path) = error {
                        self.core.onEvent(.fileChanged(torrent: torrent.metainfo.name, path: path))
                    }
                    actions += self.machine.handle(.blockFailed(r), now: self.core.now)
                }
            }
            self.perform(actions)
        }
    }

    /// Closes the connection (shutdown, displacement); completes when it is closed.
    @discardableResult
    func close(_ reason: CloseReason) -> EventLoopFuture<Void> {
        handle(.close(reason))
        return context?.channel.closeFuture ?? core.loop.makeSucceededVoidFuture()
    }

    // MARK: FetchLink

    var host: String { context?.remoteAddress?.ipAddress ?? address }
    var handshaken: Bool { machine.phase == .open }
    var isV2: Bool { machine.isV2 }
    var fast: Bool { machine.reserved.fast }
    /// The seeded torrent this connection serves (nil for a download's, or before the handshake).
    var servedTorrent: SeedTorrent? { machine.torrent }

    func send(_ messages: [PeerMessage]) {
        perform(messages.map { .send($0) })
    }

    func disconnect(reason: FetchCloseReason) { handle(.close(.download(reason))) }

    func attach(_ t: SeedTorrent) { handle(.attach(t)) }
}

extension PeerConnection.Action {
    var isLeft: Bool { if case .left = self { true } else { false } }
}

/// A peer's address for events and logs: `192.0.2.1:6881`, `[2001:db8::1]:6881`.
func peerText(_ a: SocketAddress) -> String {
    let ip = a.ipAddress ?? "?"
    return "\(a.protocol == .inet6 ? "[\(ip)]" : ip):\(a.port ?? 0)"
}
