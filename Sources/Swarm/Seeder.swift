import Locking
import NIOCore
import NIOPosix
import Metainfo
import PeerWire
import Storage

/// What a seeder reports as it runs (for logs, `--json` and status lines).
public enum SeederEvent: Sendable {
    case peerConnected(address: String, torrent: String, v2: Bool)
    case peerClosed(address: String, reason: CloseReason)
    case fileChanged(torrent: String, path: String)
}

public struct SeederConfiguration: Sendable {
    /// Peers unchoked at once; the rest wait their turn (see `Choker`).
    public var uploadSlots = 8
    public var maxPeers = 200
    /// Handshaken connections from one IP address; more are closed at their handshake.
    public var maxPeersPerAddress = 8
    /// Bytes of unfinished messages the decoders may hold over all connections, beyond
    /// `receiveAllowance` each (see `ReceiveBudget`).
    public var receiveBudget = 32 << 20
    public var receiveAllowance = 64 << 10
    public var handshakeTimeout: TimeAmount = .seconds(10)
    public var rotationInterval: Double = 10
    public init() {}
}

/// Where `Seeder.listen` ended up: the TCP address peers connect to, and the UDP socket on
/// the same port (uTP attempts, and whatever `configureUDP` put in front of them).
public struct PeerListener: Sendable {
    public let address: SocketAddress
    public let udp: any Channel
    /// Every UDP socket: `udp`, then (listening on both families) the IPv6 one on the same port.
    public var udpChannels: [any Channel] = []
    /// The IPv6 TCP address too, when listening on both families.
    public var address6: SocketAddress?

    public init(address: SocketAddress, udp: any Channel) {
        self.address = address
        self.udp = udp
        udpChannels = [udp]
    }
}

/// The host that means every IPv4 and every IPv6 address (the peer listener's default): an
/// IPv4 socket on 0.0.0.0 and an IPv6-only one on [::], on the same port. An IPv6 host
/// (`::`, `::1`) is IPv6 only, an IPv4 host IPv4 only.
public let everyAddress = "*"


/// Serves torrents over the BitTorrent peer wire protocol (plain TCP; no encryption, no
/// uTP). One event loop owns every connection's state; disk reads run on a thread pool.
/// Both belong to the caller: the seeder makes no threads of its own.
public final class Seeder: Sendable {
    let loop: any EventLoop
    let threadPool: NIOThreadPool
    let core: NIOLoopBoundBox<SeederCore>
    public let configuration: SeederConfiguration
    private let connectionCount: Locked<Int>

    public init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, threadPool: NIOThreadPool = .singleton,
                configuration: SeederConfiguration = SeederConfiguration(), onEvent: @escaping @Sendable (SeederEvent) -> Void = { _ in }) {
        self.configuration = configuration
        let loop = group.next()
        self.loop = loop
        self.threadPool = threadPool
        let count = Locked(0)
        connectionCount = count
        let core = NIOLoopBoundBox.makeBoxSendingValue(SeederCore(loop: loop, configuration: configuration, connectionCount: count, onEvent: onEvent),
                                                       eventLoop: loop)
        self.core = core
        loop.execute { core.value.start() }
    }

    /// The loop that owns every connection: a service sharing the peer port's UDP socket
    /// (the DHT) runs on it.
    public var eventLoop: any EventLoop { loop }

    public func add(_ torrent: SeedTorrent) {
        loop.execute { self.core.value.add(torrent) }
    }

    /// Stops seeding `torrent`: peers asking for its hashes are refused from now on, and the
    /// connections serving it are closed (returns once they are).
    public func remove(_ torrent: SeedTorrent) async {
        try? await loop.flatSubmit { self.core.value.remove(torrent) }.get()
    }

    /// Binds `host:port` over TCP and UDP; when the port is taken (on either side), tries
    /// the next ones (port 0: any free port). `host` `everyAddress` binds 0.0.0.0 and [::]
    /// on one port (IPv4 alone when this host has no IPv6). `configureUDP` adds handlers in front of the
    /// uTP responder on the UDP side (on the loop, as the channel is set up).
    public func listen(on host: String, port: Int, attempts: Int = 10,
                       configureUDP: @escaping @Sendable (any Channel) throws -> Void = { _ in }) async throws -> PeerListener {
        try await listenFuture(host: host, port: port, attempts: attempts, configureUDP: configureUDP).get()
    }

    func listenFuture(host: String, port: Int, attempts: Int = 10,
                      configureUDP: @escaping @Sendable (any Channel) throws -> Void = { _ in }) -> EventLoopFuture<PeerListener> {
        // Port 0: a few tries, since the UDP side may find the port the kernel gave TCP taken.
        let ports = port == 0 ? Array(repeating: 0, count: attempts) : Array(port..<min(65536, port + attempts))
        return bind(host: host, ports: ports[...], configureUDP: configureUDP)
    }

    private func bind(host: String, ports: ArraySlice<Int>, configureUDP: @escaping @Sendable (any Channel) throws -> Void) -> EventLoopFuture<PeerListener> {
        guard let port = ports.first else { return loop.makeFailedFuture(IOError(errnoCode: EADDRINUSE, reason: "bind")) }
        return bindPair(host: host, port: port, configureUDP: configureUDP).flatMapError { error in
            if let e = error as? IOError, e.errnoCode == EADDRINUSE, ports.count > 1 {
                return self.bind(host: host, ports: ports.dropFirst(), configureUDP: configureUDP)
            }
            return self.loop.makeFailedFuture(error)
        }
    }

    /// A pair of sockets (see `bindOnePair`) on `host`; for `everyAddress`, one on 0.0.0.0
    /// and one on [::] with the same port.
    private func bindPair(host: String, port: Int, configureUDP: @escaping @Sendable (any Channel) throws -> Void) -> EventLoopFuture<PeerListener> {
        guard host == everyAddress else { return bindOnePair(host: host, port: port, configureUDP: configureUDP) }
        return bindOnePair(host: "0.0.0.0", port: port, configureUDP: configureUDP).flatMap { v4 in
            self.bindOnePair(host: "::", port: v4.address.port ?? port, configureUDP: configureUDP)
                .map { v6 in
                    var both = v4
                    both.udpChannels.append(v6.udp)
                    both.address6 = v6.address
                    return both
                }
                .hop(to: self.loop)
                .flatMapError { error in
                    // No IPv6 on this host: IPv4 alone. Otherwise (the port taken over IPv6)
                    // the IPv4 sockets are given back, and the caller tries the next port.
                    if let e = error as? IOError, e.errnoCode == EAFNOSUPPORT || e.errnoCode == EADDRNOTAVAIL {
                        return self.loop.makeSucceededFuture(v4)
                    }
                    let servers = self.core.value.servers
                    let mine = servers.filter { $0 === v4.udp || $0.localAddress == v4.address }
                    self.core.value.servers.removeAll { s in mine.contains { $0 === s } }
                    return EventLoopFuture.andAllComplete(mine.map { $0.close() }, on: self.loop).flatMap { self.loop.makeFailedFuture(error) }
                }
        }
    }

    /// TCP on `port`, then UDP on the port TCP got, on one address. The UDP side must bind
    /// too (the DHT and uTP live there); if its port is taken, the TCP port is given back.
    /// An IPv6 address never takes IPv4 too (IPV6_V6ONLY): `everyAddress` binds a socket
    /// per family.
    private func bindOnePair(host: String, port: Int, configureUDP: @escaping @Sendable (any Channel) throws -> Void) -> EventLoopFuture<PeerListener> {
        let v6Only = ChannelOptions.Types.SocketOption(level: .ipv6, name: .ipv6_v6only)
        let isV6 = host.contains(":")
        var server = ServerBootstrap(group: loop, childGroup: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        if isV6 { server = server.serverChannelOption(v6Only, value: 1) }
        return server
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            // Small enough that a hash reply or a choke never waits behind much piece data.
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 64 << 10, high: 256 << 10))
            .childChannelInitializer { channel in self.initialize(channel, outgoing: nil) }
            .bind(host: host, port: port)
            .flatMap { tcp in
                guard let address = tcp.localAddress, let bound = address.port else {
                    tcp.close(promise: nil)
                    return self.loop.makeFailedFuture(IOError(errnoCode: EINVAL, reason: "bind"))
                }
                var datagram = DatagramBootstrap(group: self.loop).channelOption(.socketOption(.so_reuseaddr), value: 1)
                    .channelOption(.receivePacketInfo, value: true)  // the DHT answers with the address a query came to
                if isV6 { datagram = datagram.channelOption(v6Only, value: 1) }
                return datagram
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try configureUDP(channel)
                            try channel.pipeline.syncOperations.addHandler(UTPResponder { peer in self.connectBack(peer) })
                        }
                    }
                    .bind(host: host, port: bound)
                    .hop(to: self.loop)
                    .flatMapError { error in
                        tcp.close(promise: nil)
                        return self.loop.makeFailedFuture(error)
                    }
                    .map { udp in
                        self.core.value.servers += [tcp, udp]
                        if self.core.value.listenPort == nil { self.core.value.listenPort = UInt16(bound) }
                        return PeerListener(address: address, udp: udp)
                    }
            }
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
        let now = Double(NIODeadline.now().uptimeNanoseconds) / 1e9
        let fetch = Fetch(magnet: magnet, metainfo: metainfo, options: options, loop: loop, threadPool: threadPool, now: now, onEvent: onEvent)
        let published = fetch.published
        let bound = NIOLoopBoundBox.makeBoxSendingValue(fetch, eventLoop: loop)
        loop.execute {
            let core = self.core.value
            core.addFetch(bound.value)
            bound.value.start(now: core.now)
        }
        return FetchHandle(fetch: bound, loop: loop, published: published)
    }

    /// One TCP attempt to a peer that just tried uTP, for each torrent (at most 16).
    private func connectBack(_ peer: SocketAddress) {
        guard !core.value.stopped, let host = peer.ipAddress, let port = peer.port else { return }
        for torrent in core.value.torrentList.prefix(16) {
            let hash = torrent.shortHashes[0]
            _ = ClientBootstrap(group: loop)
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
        ClientBootstrap(group: loop)
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
            let core = self.core.value
            let account = ReceiveBudget.Account()
            let handler = PeerHandler(core: core, threadPool: self.threadPool, outgoingHash: outgoing, upgrade: upgrade, account: account)
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(BudgetedDecoder(budget: core.receiveBudget, account: account)))
            try channel.pipeline.syncOperations.addHandler(handler)
        }
    }

    /// Connections open, as of the last second.
    public var peerCount: Int { connectionCount.withLock { $0 } }

    /// Flushes download records, then closes every connection and the listeners. The
    /// threads are the caller's and keep running.
    public func stop() async {
        try? await stopFuture().get()
    }

    func stopFuture() -> EventLoopFuture<Void> {
        loop.flatSubmit { self.core.value.closeAll() }
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
    /// The first port `listen` bound: told to peers (`p`), and how PEX knows ourselves.
    var listenPort: UInt16?
    var choker: Choker
    let receiveBudget: ReceiveBudget
    let peerID: [UInt8] = Array("-WS0010-".utf8) + (0..<12).map { _ in UInt8.random(in: 0...255) }
    private var timer: Scheduled<Void>?
    private(set) var stopped = false

    private let connectionCount: Locked<Int>

    init(loop: any EventLoop, configuration: SeederConfiguration, connectionCount: Locked<Int>,
         onEvent: @escaping @Sendable (SeederEvent) -> Void) {
        self.loop = loop
        self.configuration = configuration
        self.connectionCount = connectionCount
        self.onEvent = onEvent
        self.choker = Choker(slots: configuration.uploadSlots)
        self.receiveBudget = ReceiveBudget(limit: configuration.receiveBudget, allowance: configuration.receiveAllowance)
    }

    /// Starts the one-second tick (on the loop).
    func start() { scheduleTick() }

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

    func remove(_ t: SeedTorrent) -> EventLoopFuture<Void> {
        torrentList.removeAll { $0 === t }
        for h in t.shortHashes where torrents[h] === t { torrents[h] = nil }
        let serving = connections.values.filter { $0.servedTorrent === t }
        return EventLoopFuture.andAllComplete(serving.map { $0.close(.torrentRemoved) }, on: loop)
    }

    func addFetch(_ f: Fetch) {
        fetchList.append(f)
        for h in f.shortHashes { fetches[h] = f }
    }

    /// Connections from `host` past their handshake.
    func handshakenConnections(from host: String) -> Int {
        connections.values.count { $0.handshaken && $0.host == host }
    }

    func isBanned(_ host: String) -> Bool { fetchList.contains { $0.isBanned(host) } }

    var now: Double { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }

    private var lastRotation: Double = 0
    private func tick() {
        let now = self.now
        connectionCount.withLock { $0 = connections.count }
        for handler in connections.values { handler.tick(now: now) }
        for fetch in fetchList { fetch.tick(now: now) }
        exchangePeers(now: now)
        if now - lastRotation >= configuration.rotationInterval {
            lastRotation = now
            apply(choker.rotate(now: now))
        }
    }

    /// PEX: each open connection is offered the other connections of its torrent, and its
    /// `PEXState` decides whether a message is due.
    private func exchangePeers(now: Double) {
        var swarms: [ObjectIdentifier: [PEXEntry]] = [:]
        var open: [(PeerHandler, ObjectIdentifier)] = []
        for handler in connections.values {
            guard let swarm = handler.swarm else { continue }
            open.append((handler, swarm))
            if let entry = handler.pexEntry { swarms[swarm, default: []].append(entry) }
        }
        for (handler, swarm) in open { handler.exchangePeers(swarms[swarm] ?? [], now: now) }
    }

    func interestChanged(_ handler: PeerHandler, interested: Bool) {
        // A connection that is gone must never take a slot.
        guard connections[ObjectIdentifier(handler)] != nil else { return }
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
        for fetch in fetchList { fetch.failWaiters() }
        let flushed = EventLoopFuture.andAllComplete(fetchList.map { $0.flush() }, on: loop)
        return flushed.assumeIsolated().flatMap { self.closeConnections() }.nonisolated()
    }

    private func closeConnections() -> EventLoopFuture<Void> {
        let closes = servers.map { $0.close() } + connections.values.map { $0.close(.shuttingDown) }
        return EventLoopFuture.andAllComplete(closes, on: loop)
    }
}

/// A download started with `Seeder.fetch`, usable from any thread.
public final class FetchHandle: Sendable {
    let fetch: NIOLoopBoundBox<Fetch>
    let loop: any EventLoop
    private let published: PublishedProgress

    init(fetch: NIOLoopBoundBox<Fetch>, loop: any EventLoop, published: PublishedProgress) {
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
