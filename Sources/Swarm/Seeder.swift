import DHT
import DHTProtocol
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Metainfo
import PeerWire
import Storage

/// What a seeder reports as it runs (for logs, `--json` and status lines).
public enum SeederEvent: Sendable {
    case peerConnected(address: String, torrent: String, v2: Bool)
    case peerClosed(address: String, reason: String)
    case fileChanged(torrent: String, path: String)
}

public struct SeederConfiguration: Sendable {
    /// Peers unchoked at once; the rest wait their turn (see `Choker`).
    public var uploadSlots = 8
    public var maxPeers = 200
    public var handshakeTimeout: TimeAmount = .seconds(10)
    public var rotationInterval: Double = 10
    public init() {}
}

/// Serves torrents over the BitTorrent peer wire protocol (plain TCP; no encryption, no
/// uTP). One event loop owns every connection's state; disk reads run on a thread pool.
public final class Seeder: Sendable {
    let group: MultiThreadedEventLoopGroup
    let loop: any EventLoop
    let threadPool: NIOThreadPool
    let core: NIOLoopBound<SeederCore>
    public let configuration: SeederConfiguration

    public init(configuration: SeederConfiguration = SeederConfiguration(), onEvent: @escaping @Sendable (SeederEvent) -> Void = { _ in }) {
        self.configuration = configuration
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        loop = group.next()
        threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
        let loop = self.loop
        core = try! loop.submit { NIOLoopBound(SeederCore(loop: loop, configuration: configuration, onEvent: onEvent), eventLoop: loop) }.wait()
    }

    private let dhtService = NIOLockedValueBox<DHTService?>(nil)
    /// The TCP port bound by `listen` (0 before), announced on the DHT.
    private let boundPort = NIOLockedValueBox(0)

    /// Runs a mainline DHT node (call before `listen`): on the peer port's UDP side, or on
    /// its own UDP port `port` when given.
    @discardableResult
    public func enableDHT(bootstrap: [Endpoint], statePath: String?, port: Int? = nil, onEvent: @escaping @Sendable (DHTEvent) -> Void) -> DHTService {
        let service = DHTService(loop: loop, bootstrap: bootstrap, statePath: statePath, onEvent: onEvent)
        dhtService.withLockedValue { $0 = service }
        dhtPort.withLockedValue { $0 = port }
        return service
    }

    private let dhtPort = NIOLockedValueBox<Int?>(nil)
    private let dhtBoundPort = NIOLockedValueBox<Int?>(nil)

    /// The UDP port the DHT node listens on (nil before `listen`, or without a DHT).
    public var dhtLocalPort: Int? { dhtBoundPort.withLockedValue { $0 } }

    public var dht: DHTService? { dhtService.withLockedValue { $0 } }

    /// Announces every torrent being seeded on the DHT (truncated v2 hash, and the v1 hash of
    /// hybrids) with TCP port `port`.
    public func announceOnDHT(port: Int) {
        guard let dht else { return }
        loop.execute {
            for t in self.core.value.torrentList {
                for h in t.shortHashes { if let id = NodeID(bytes: h) { dht.announce(id, port: UInt16(port)) } }
            }
        }
    }

    public func add(_ torrent: SeedTorrent) {
        loop.execute { self.core.value.add(torrent) }
    }

    /// Binds `host:port`; when the port is taken, tries the next ones (port 0: any free port).
    public func listen(host: String, port: Int, attempts: Int = 10) throws -> SocketAddress {
        var lastError: (any Error)?
        // Port 0: a few tries, since the UDP side may find the port the kernel gave TCP taken.
        for p in (port == 0 ? Array(repeating: 0, count: attempts) : Array(port..<min(65536, port + attempts))) {
            do {
                let channel = try ServerBootstrap(group: group)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .serverChannelOption(.backlog, value: 256)
                    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                    // Small enough that a hash reply or a choke never waits behind much piece data.
                    .childChannelOption(.writeBufferWaterMark, value: .init(low: 64 << 10, high: 256 << 10))
                    .childChannelInitializer { channel in self.initialize(channel, outgoing: nil) }
                    .bind(host: host, port: p).wait()
                loop.execute { self.core.value.servers.append(channel) }
                let address = channel.localAddress!
                boundPort.withLockedValue { $0 = address.port ?? 0 }
                // The same port over UDP: the DHT (bencoded datagrams) and peers that try uTP
                // first (see UTPResponder).
                let ownPort = dhtPort.withLockedValue { $0 }
                let dht = ownPort == nil ? self.dht : nil
                if let service = self.dht, let ownPort {
                    let channel = try DatagramBootstrap(group: group)
                        .channelOption(.socketOption(.so_reuseaddr), value: 1)
                        .channelInitializer { channel in
                            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(DHTDatagramHandler(service)) }
                        }
                        .bind(host: host, port: ownPort).wait()
                    loop.execute { self.core.value.servers.append(channel) }
                    service.attach(channel)
                    dhtBoundPort.withLockedValue { $0 = channel.localAddress?.port }
                }
                // The UDP side must bind too (the DHT and uTP live there); if its port is taken,
                // give the TCP port back and try the next one.
                let udp: any Channel
                do {
                    udp = try DatagramBootstrap(group: group)
                        .channelOption(.socketOption(.so_reuseaddr), value: 1)
                        .channelInitializer({ channel in
                            channel.eventLoop.makeCompletedFuture {
                                if let dht { try channel.pipeline.syncOperations.addHandler(DHTDatagramHandler(dht)) }
                                try channel.pipeline.syncOperations.addHandler(UTPResponder { peer in self.connectBack(peer) })
                            }
                        })
                        .bind(host: host, port: address.port!).wait()
                } catch {
                    try? channel.close().wait()
                    loop.execute { self.core.value.servers.removeAll { $0 === channel } }
                    throw error
                }
                loop.execute { self.core.value.servers.append(udp) }
                if let dht {
                    dht.attach(udp)
                    dhtBoundPort.withLockedValue { $0 = udp.localAddress?.port }
                }
                return address
            } catch let e as IOError where e.errnoCode == EADDRINUSE {
                lastError = e
            }
        }
        throw lastError!
    }

    /// Connects out to a known peer, for each torrent being seeded, and keeps doing so: a
    /// connection that fails or ends is retried after 5 s, doubling up to 60 s (reset once a
    /// connection has lasted a minute), until shutdown.
    public func connect(host: String, port: Int) {
        loop.execute {
            for torrent in self.core.value.torrentList {
                self.dial(host: host, port: port, hash: torrent.shortHashes[0], upgrade: false, failures: 0)
            }
            for fetch in self.core.value.fetchList {
                let (hash, upgrade) = fetch.outgoingHash
                self.dial(host: host, port: port, hash: hash, upgrade: upgrade, failures: 0)
            }
        }
    }

    /// Connects out to a peer for one download only (retried like `connect`).
    public func connect(host: String, port: Int, for handle: FetchHandle) {
        loop.execute {
            let (hash, upgrade) = handle.fetch.value.outgoingHash
            self.dial(host: host, port: port, hash: hash, upgrade: upgrade, failures: 0)
        }
    }

    /// Starts downloading a torrent (from a magnet link or its metainfo) into a directory;
    /// it is served to peers as it verifies, and kept seeding once complete. Connect it to
    /// peers with `connect`.
    public func fetch(magnet: MagnetLink?, metainfo: Metainfo?, options: FetchOptions,
                      onEvent: @escaping @Sendable (FetchEvent) -> Void) -> FetchHandle {
        let pool = threadPool
        let (bound, published) = try! loop.submit { () -> (NIOLoopBound<Fetch>, PublishedProgress) in
            let core = self.core.value
            let fetch = Fetch(magnet: magnet, metainfo: metainfo, options: options, loop: self.loop, threadPool: pool, now: core.now, onEvent: onEvent)
            core.addFetch(fetch)
            fetch.start(now: core.now)
            return (NIOLoopBound(fetch, eventLoop: self.loop), fetch.published)
        }.wait()
        let handle = FetchHandle(fetch: bound, loop: loop, published: published)
        findPeersOnDHT(handle, hashes: (metainfo?.shortHashes ?? []) + [magnet?.v2InfoHash.map { Array($0.bytes.prefix(20)) }, magnet?.v1InfoHash?.bytes].compactMap { $0 })
        return handle
    }

    /// Looks the download up on the DHT until it completes, connecting to every new peer.
    private func findPeersOnDHT(_ handle: FetchHandle, hashes: [[UInt8]]) {
        guard let dht else { return }
        let seen = NIOLockedValueBox(Set<Endpoint>())
        let port = boundPort.withLockedValue { $0 }
        for h in Set(hashes) {
            guard let id = NodeID(bytes: h) else { continue }
            // A downloader is a peer too (it serves what it has verified).
            if port > 0 { dht.announce(id, port: UInt16(port)) }
            dht.lookup(id) { peers in
                let fresh = seen.withLockedValue { s in peers.filter { s.insert($0).inserted } }
                for p in fresh { self.connect(host: p.ip.description, port: Int(p.port), for: handle) }
                return !handle.progress.complete
            }
        }
    }

    /// One TCP attempt to a peer that just tried uTP, for each torrent (at most 16).
    private func connectBack(_ peer: SocketAddress) {
        guard !core.value.stopped, let host = peer.ipAddress, let port = peer.port else { return }
        for torrent in core.value.torrentList.prefix(16) {
            let hash = torrent.shortHashes[0]
            _ = ClientBootstrap(group: group)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelOption(.writeBufferWaterMark, value: .init(low: 64 << 10, high: 256 << 10))
                .connectTimeout(.seconds(5))
                .channelInitializer { channel in self.initialize(channel, outgoing: hash) }
                .connect(host: host, port: port)
        }
    }

    private func dial(host: String, port: Int, hash: [UInt8], upgrade: Bool, failures: Int) {
        guard !core.value.stopped, !core.value.isBanned(host) else { return }
        let started = NIODeadline.now()
        ClientBootstrap(group: group)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(low: 64 << 10, high: 256 << 10))
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in self.initialize(channel, outgoing: hash, upgrade: upgrade) }
            .connect(host: host, port: port)
            .flatMap { $0.closeFuture }
            .whenComplete { _ in
                let lasted = NIODeadline.now() - started > .seconds(60)
                let next = lasted ? 0 : failures + 1
                let delay = TimeAmount.seconds(Int64(min(60, 5 << min(next, 4))))
                self.loop.scheduleTask(in: delay) { self.dial(host: host, port: port, hash: hash, upgrade: upgrade, failures: next) }
            }
    }

    private func initialize(_ channel: any Channel, outgoing: [UInt8]?, upgrade: Bool = false) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            let handler = PeerHandler(core: self.core.value, threadPool: self.threadPool, outgoingHash: outgoing, upgrade: upgrade)
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(PeerWireDecoder()))
            try channel.pipeline.syncOperations.addHandler(handler)
        }
    }

    public var peerCount: Int { (try? loop.submit { self.core.value.connections.count }.wait()) ?? 0 }

    /// Closes every connection and the listeners, then stops the threads.
    public func shutdown() {
        dht?.stop()
        let done = loop.flatSubmit { self.core.value.closeAll() }
        try? done.wait()
        try? threadPool.syncShutdownGracefully()
        try? group.syncShutdownGracefully()
    }
}

/// Loop-confined state shared by all connections: the torrents by hash, live connections
/// and the choker.
final class SeederCore {
    let loop: any EventLoop
    let configuration: SeederConfiguration
    let onEvent: @Sendable (SeederEvent) -> Void
    var torrents: [[UInt8]: SeedTorrent] = [:]
    var torrentList: [SeedTorrent] = []
    /// Downloads, by every hash a peer may use for them.
    var fetches: [[UInt8]: Fetch] = [:]
    var fetchList: [Fetch] = []
    var connections: [ObjectIdentifier: PeerHandler] = [:]
    /// Connections still in their handshake, oldest first.
    var handshaking: [ObjectIdentifier] = []
    var servers: [any Channel] = []
    var choker: Choker
    let peerID: [UInt8] = Array("-WS0010-".utf8) + (0..<12).map { _ in UInt8.random(in: 0...255) }
    private var timer: Scheduled<Void>?
    private(set) var stopped = false

    init(loop: any EventLoop, configuration: SeederConfiguration, onEvent: @escaping @Sendable (SeederEvent) -> Void) {
        self.loop = loop
        self.configuration = configuration
        self.onEvent = onEvent
        self.choker = Choker(slots: configuration.uploadSlots)
        scheduleTick()
    }

    private func scheduleTick() {
        guard !stopped else { return }
        timer = loop.assumeIsolated().scheduleTask(in: .seconds(1)) { [weak self] in
            self?.tick()
            self?.scheduleTick()
        }
    }

    func add(_ t: SeedTorrent) {
        torrentList.append(t)
        for h in t.shortHashes { torrents[h] = t }
    }

    func addFetch(_ f: Fetch) {
        fetchList.append(f)
        for h in f.shortHashes { fetches[h] = f }
    }

    func isBanned(_ host: String) -> Bool { fetchList.contains { $0.isBanned(host) } }

    var now: Double { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }

    private var lastRotation: Double = 0
    private func tick() {
        let now = self.now
        for handler in connections.values { handler.tick(now: now) }
        for fetch in fetchList { fetch.tick(now: now) }
        if now - lastRotation >= configuration.rotationInterval {
            lastRotation = now
            apply(choker.rotate(now: now))
        }
    }

    func interestChanged(_ handler: PeerHandler, interested: Bool) {
        apply(choker.interest(ObjectIdentifier(handler), interested: interested, now: now))
    }

    func removed(_ handler: PeerHandler) {
        connections[ObjectIdentifier(handler)] = nil
        handshaking.removeAll { $0 == ObjectIdentifier(handler) }
        apply(choker.remove(ObjectIdentifier(handler), now: now))
    }

    private func apply(_ decisions: [(ObjectIdentifier, Bool)]) {
        for (id, choke) in decisions { connections[id]?.setChoking(choke) }
    }

    func closeAll() -> EventLoopFuture<Void> {
        stopped = true
        timer?.cancel()
        let flushed = EventLoopFuture.andAllComplete(fetchList.map { $0.flush() }, on: loop)
        return flushed.assumeIsolated().flatMap { self.closeConnections() }.nonisolated()
    }

    private func closeConnections() -> EventLoopFuture<Void> {
        let closes = servers.map { $0.close() } + connections.values.map { $0.close(reason: "shutting down") }
        return EventLoopFuture.andAllComplete(closes, on: loop)
    }
}

/// A download started with `Seeder.fetch`, usable from any thread.
public final class FetchHandle: Sendable {
    let fetch: NIOLoopBound<Fetch>
    let loop: any EventLoop
    private let published: PublishedProgress

    init(fetch: NIOLoopBound<Fetch>, loop: any EventLoop, published: PublishedProgress) {
        self.fetch = fetch
        self.loop = loop
        self.published = published
    }

    /// As of the last second (updated at once when the download completes or fails).
    public var progress: FetchProgress { published.current }

    /// Completes when bytes `range` of file `file` (index into the metainfo's files) are
    /// verified, fetching them before anything else (`deadline` orders competing wants).
    public func want(file: Int, range: Range<Int64>, deadline: Double) -> EventLoopFuture<Void> {
        loop.flatSubmit { self.fetch.value.want(file: file, range: range, deadline: deadline) }
    }

    /// Completes once the torrent is known and its data on disk checked.
    public func ready() -> EventLoopFuture<SeedTorrent> {
        loop.flatSubmit { self.fetch.value.ready() }
    }

    /// The torrent once its metadata is known (nil before, or once the seeder stopped).
    public var torrent: SeedTorrent? { published.torrent }
}

/// Hands bencoded datagrams (DHT) on the peer port to the DHT node; the rest go on (uTP).
final class DHTDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias InboundOut = AddressedEnvelope<ByteBuffer>
    private let dht: DHTService

    init(_ dht: DHTService) { self.dht = dht }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        if envelope.data.readableBytes > 0, envelope.data.getInteger(at: envelope.data.readerIndex, as: UInt8.self) == UInt8(ascii: "d") {
            dht.handle(Array(buffer: envelope.data), from: envelope.remoteAddress)
        } else {
            context.fireChannelRead(data)
        }
    }
}
