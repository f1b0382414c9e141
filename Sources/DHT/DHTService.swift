import DHTProtocol
import Signing
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// What a DHT node reports as it runs.
public enum DHTEvent: Sendable {
    case started(nodeID: String, port: Int)
    case announced(hash: NodeID, nodes: Int)
    /// Peers found by a lookup, `seconds` after that lookup started.
    case peers(hash: NodeID, [Endpoint], seconds: Double)
    case nodes(Int)
    /// The address other nodes see this node at (their majority vote).
    case externalAddress(String)
    /// A node answered an item lookup with an item that did not verify (a forged
    /// signature, for one): it was not used.
    case itemRefused(target: NodeID, from: Endpoint, reason: String)
}

/// A mainline DHT node on a UDP socket someone else owns (the seeder's peer port): it is
/// handed the bencoded datagrams arriving there and writes its own through the same
/// channel. Lives on that channel's event loop; announces and lookups repeat on timers.
public final class DHTService: Sendable {
    private let loop: any EventLoop
    private let state: NIOLoopBoundBox<State>
    public let nodeID: NodeID

    final class State {
        var core: DHTNodeCore
        /// The sockets, by address family (one of each at most): a datagram goes out
        /// through the one of its destination's family.
        var channels: [AddressFamily: any Channel] = [:]
        var channel: (any Channel)? { channels[.ipv4] ?? channels[.ipv6] }
        var bootstrap: [Endpoint]
        let statePath: String?
        let onEvent: @Sendable (DHTEvent) -> Void
        var announces: [(hash: NodeID, port: UInt16, next: Double, step: Int)] = []
        var lookups: [(hash: NodeID, interval: Double, next: Double, step: Int, onPeers: @Sendable ([Endpoint]) -> Bool)] = []
        var running: [Int: (hash: NodeID, announce: Bool, started: Double)] = [:]
        /// Item lookups and puts waiting for their end: called once with the best item
        /// found and how many nodes were sent a put.
        var itemWaiters: [Int: @Sendable (DHTItem?, Int) -> Void] = [:]
        /// Item lookups and puts asked for before the node knew any other node: they start
        /// when it joins (a lookup started alone ends at once with nothing), or after
        /// `joinWait` seconds whatever happened.
        var beforeJoin: [() -> Void] = []
        var lastBootstrap: Double = -1_000
        var lastExplore: Double = 0
        var lastNodesEvent: Double = 0
        var timer: Scheduled<Void>?
        /// Wakes the node when a lookup query turns slow (sooner than the next tick).
        var slowTimer: (at: Double, task: Scheduled<Void>)?
        var stopped = false

        init(core: DHTNodeCore, bootstrap: [Endpoint], statePath: String?, onEvent: @escaping @Sendable (DHTEvent) -> Void) {
            self.core = core
            self.bootstrap = bootstrap
            self.statePath = statePath
            self.onEvent = onEvent
        }
    }

    /// Announce and lookup schedule: often while the node is joining (its table grows and
    /// the first announces may have reached nobody), then every 15 minutes for announces.
    static let announceSteps: [Double] = [0, 2, 5, 15, 30, 120]
    static let lookupSteps: [Double] = [0, 2, 5, 10]
    static let announceInterval: Double = 15 * 60

    /// `statePath`: where the node id and known nodes are kept across restarts.
    public init(loop: any EventLoop, bootstrap: [Endpoint], statePath: String?, onEvent: @escaping @Sendable (DHTEvent) -> Void = { _ in }) {
        self.loop = loop
        let saved = statePath.flatMap(Self.load)
        let id = saved?.id ?? NodeID.random()
        nodeID = id
        let now = Self.now
        let core = DHTNodeCore(id: id, now: now)
        let known = saved?.nodes ?? []
        state = NIOLoopBoundBox.makeBoxSendingValue(State(core: core, bootstrap: bootstrap + known.map(\.endpoint), statePath: statePath, onEvent: onEvent),
                                                    eventLoop: loop)
    }

    /// Starts sending through `channel` (the UDP socket whose bencoded datagrams come to `handle`).
    public func attach(_ channel: any Channel) {
        attach([channel])
    }

    /// Starts sending through `channels`: an IPv4 and an IPv6 socket (on the same port), or
    /// one of them. The node queries nodes of the families it has a socket for (BEP 32).
    public func attach(_ channels: [any Channel]) {
        loop.execute {
            let s = self.state.value
            for c in channels {
                s.channels[c.localAddress?.protocol == .inet6 ? .ipv6 : .ipv4] = c
            }
            s.core.families = Set(s.channels.keys)
            guard let first = channels.first else { return }
            s.onEvent(.started(nodeID: self.nodeID.hex, port: first.localAddress?.port ?? 0))
            self.tick()
        }
    }

    /// A datagram that starts with 'd' arrived on the shared socket. Call on the loop.
    /// `destination`: the address it was sent to, when the socket reports it (packet info).
    public func handle(_ bytes: [UInt8], from address: SocketAddress, to destination: SocketAddress? = nil) {
        guard let source = Self.endpoint(address) else { return }
        let s = state.value
        let wasAlone = s.core.tables.count == 0
        let local = destination?.ipAddress.flatMap(IPAddress.init)
        send(s.core.receive(bytes, from: source, at: local, now: Self.now))
        // Just joined: what waited for a first node starts now, not at the next tick.
        if wasAlone, s.core.tables.count > 0 {
            runDue(now: Self.now)
            startItemLookupsWaitingForJoin()
        }
        deliverEvents()
    }

    /// Announces `hash` with TCP port `port`, now and periodically. Announcing a hash again
    /// replaces its port (a router mapping moved it) and announces at once.
    public func announce(_ hash: NodeID, port: UInt16) {
        loop.execute {
            self.state.value.announces.removeAll { $0.hash == hash }
            self.state.value.announces.append((hash, port, 0, 0))
            self.state.value.core.serve(hash, port: port)
            self.tick()
        }
    }

    /// Stops announcing `hash` (a torrent no longer seeded); nodes forget it when its
    /// announce expires.
    public func stopAnnouncing(_ hash: NodeID) {
        loop.execute {
            self.state.value.announces.removeAll { $0.hash == hash }
            self.state.value.core.serve(hash, port: nil)
        }
    }

    /// Looks for peers of `hash` every `interval` seconds (first at once) while `onPeers`
    /// returns true; it is called with each batch found.
    public func lookup(_ hash: NodeID, every interval: Double = 15, onPeers: @escaping @Sendable ([Endpoint]) -> Bool) {
        loop.execute {
            self.state.value.lookups.append((hash, interval, 0, 0, onPeers))
            self.tick()
        }
    }

    /// The mutable item of `key` and `salt` as the nodes closest to it hold it: the highest
    /// `seq` whose signature verifies, or nil (none found, or the service is not running).
    /// Returns when the lookup ends (within `DHTNodeCore.Configuration.lookupTimeout`).
    public func item(key: Ed25519PublicKey, salt: [UInt8] = []) async -> MutableItem? {
        let found = await itemLookup { core, now in core.getItem(key: key, salt: salt, now: now) }
        if case .mutable(let m)? = found.item { return m }
        return nil
    }

    /// Puts `item` on the eight nodes closest to it that gave a token (and keeps it in this
    /// node's own store). Returns the best item the lookup found on the way (`item` itself,
    /// or a mutable item with a higher `seq`, which those nodes keep instead) and how many
    /// nodes were sent the put.
    public func put(_ item: DHTItem) async -> (found: DHTItem?, sentTo: Int) {
        let done = await itemLookup { core, now in core.putItem(item, now: now) }
        return (done.item, done.sentTo)
    }

    private func itemLookup(_ start: @escaping @Sendable (inout DHTNodeCore, Double) -> (lookup: Int, [DHTNodeCore.Outgoing]))
        async -> (item: DHTItem?, sentTo: Int) {
        await withCheckedContinuation { (c: CheckedContinuation<(item: DHTItem?, sentTo: Int), Never>) in
            loop.execute {
                let s = self.state.value
                guard !s.stopped, s.channel != nil else { return c.resume(returning: (nil, 0)) }
                let run = {
                    guard !s.stopped else { return c.resume(returning: (nil, 0)) }
                    let (l, out) = start(&s.core, Self.now)
                    s.itemWaiters[l] = { item, sentTo in c.resume(returning: (item, sentTo)) }
                    self.send(out)
                    self.deliverEvents()
                }
                guard s.core.tables.count == 0, !s.bootstrap.isEmpty else { return run() }
                s.beforeJoin.append(run)
                if s.beforeJoin.count == 1 {
                    self.loop.scheduleTask(in: .milliseconds(Int64(Self.joinWait * 1000))) { self.startItemLookupsWaitingForJoin() }
                }
            }
        }
    }

    /// The longest an item lookup or put waits for the node to know another node.
    static let joinWait: Double = 10

    private func startItemLookupsWaitingForJoin() {
        let s = state.value
        let waiting = s.beforeJoin
        s.beforeJoin = []
        for run in waiting { run() }
    }

    public func nodeCount() async -> Int { (try? await loop.submit { self.state.value.core.tables.count }.get()) ?? 0 }

    /// Nodes in the IPv4 and in the IPv6 routing table.
    public func nodeCounts() async -> (ipv4: Int, ipv6: Int) {
        (try? await loop.submit { let t = self.state.value.core.tables; return (t.ipv4.count, t.ipv6.count) }.get()) ?? (0, 0)
    }

    /// Stops the timers and saves the node id and the good nodes.
    public func stop() async {
        try? await loop.submit {
            let s = self.state.value
            s.stopped = true
            s.timer?.cancel()
            s.slowTimer?.task.cancel()
            self.startItemLookupsWaitingForJoin()  // each ends at once with nothing
            for waiter in s.itemWaiters.values { waiter(nil, 0) }
            s.itemWaiters.removeAll()
            self.save()
        }.get()
    }

    // MARK: on the loop

    private func tick() {
        let s = state.value
        guard !s.stopped, s.channel != nil else { return }
        s.timer?.cancel()
        let now = Self.now
        send(s.core.tick(now: now))
        // (Re)join while the table is small.
        if s.core.tables.count < 8, !s.bootstrap.isEmpty, now - s.lastBootstrap > 30 {
            s.lastBootstrap = now
            send(s.core.bootstrap(s.bootstrap, now: now))
        }
        // A young node (a small table) explores toward random ids every few seconds, so that
        // a network where each node knew only one other converges quickly.
        if s.core.tables.count > 0, s.core.tables.count < 32, now - s.lastExplore > 3 {
            s.lastExplore = now
            send(s.core.explore(NodeID.random(), now: now))
        }
        runDue(now: now)
        if now - s.lastNodesEvent >= 5 {
            s.lastNodesEvent = now
            s.onEvent(.nodes(s.core.tables.count))
        }
        deliverEvents()
        s.timer = loop.assumeIsolated().scheduleTask(in: .milliseconds(250)) { [weak self] in self?.tick() }
    }

    /// Announces and lookups that are due. They wait until the node knows someone (a join
    /// in flight), unless it was given nobody to join through.
    private func runDue(now: Double) {
        let s = state.value
        let joined = s.core.tables.count > 0 || s.bootstrap.isEmpty
        for i in s.announces.indices where joined && s.announces[i].next <= now {
            let a = s.announces[i]
            for me in ownEndpoints(port: a.port) { s.core.storeSelf(a.hash, at: me, now: now) }
            let (l, out) = s.core.getPeers(a.hash, announcePort: a.port, now: now)
            s.running[l] = (a.hash, true, now)
            send(out)
            let step = a.step + 1
            let delay = step < Self.announceSteps.count ? Self.announceSteps[step] - Self.announceSteps[step - 1] : Self.announceInterval
            s.announces[i].next = now + delay
            s.announces[i].step = step
        }
        for i in s.lookups.indices where joined && s.lookups[i].next <= now {
            let (l, out) = s.core.getPeers(s.lookups[i].hash, announcePort: nil, now: now)
            s.running[l] = (s.lookups[i].hash, false, now)
            send(out)
            let step = s.lookups[i].step + 1
            s.lookups[i].step = step
            s.lookups[i].next = now + (step < Self.lookupSteps.count ? Self.lookupSteps[step] - Self.lookupSteps[step - 1] : s.lookups[i].interval)
        }
    }

    private func deliverEvents() {
        let s = state.value
        for e in s.core.drainEvents() {
            switch e {
            case .peers(let l, let peers):
                guard let r = s.running[l] else { continue }
                s.onEvent(.peers(hash: r.hash, peers, seconds: Self.now - r.started))
                if !r.announce {
                    s.lookups.removeAll { $0.hash == r.hash && !$0.onPeers(peers) }
                }
            case .externalAddress(let ip):
                s.onEvent(.externalAddress(ip.description))
            case .lookupDone(let l, _, let announced):
                if let r = s.running.removeValue(forKey: l), r.announce { s.onEvent(.announced(hash: r.hash, nodes: announced)) }
            case .itemLookupDone(let l, let item, _, _, let putTo):
                s.itemWaiters.removeValue(forKey: l)?(item, putTo)
            case .itemPutAnswered:
                break
            case .itemRejected(_, let target, let from, let reason):
                s.onEvent(.itemRefused(target: target, from: from, reason: reason))
            }
        }
    }

    private func send(_ out: [DHTNodeCore.Outgoing]) {
        let channels = state.value.channels
        guard !channels.isEmpty, !out.isEmpty else { return }
        var written: Set<AddressFamily> = []
        for o in out where DHTNodeCore.isDialable(o.to) {
            guard let channel = channels[o.to.ip.family],
                  let address = try? SocketAddress(ipAddress: o.to.ip.description, port: Int(o.to.port)) else { continue }
            var buffer = channel.allocator.buffer(capacity: o.bytes.count)
            buffer.writeBytes(o.bytes)
            channel.write(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
            written.insert(o.to.ip.family)
        }
        for f in written { channels[f]?.flush() }
        scheduleSlowCheck()
    }

    /// A lookup query that goes unanswered is marked slow when it is due, not at the next
    /// 250 ms tick: on a fast network that is a few milliseconds.
    private func scheduleSlowCheck() {
        let s = state.value
        guard !s.stopped, let due = s.core.nextSlowCheck() else { return }
        if let armed = s.slowTimer, armed.at <= due { return }
        s.slowTimer?.task.cancel()
        let wait = max(0.001, due - Self.now)
        let task = loop.assumeIsolated().scheduleTask(in: .microseconds(Int64(wait * 1_000_000))) { [weak self] in
            guard let self else { return }
            let s = self.state.value
            s.slowTimer = nil
            guard !s.stopped else { return }
            self.send(s.core.markSlow(now: Self.now))
            self.deliverEvents()
            self.scheduleSlowCheck()
        }
        s.slowTimer = (due, task)
    }

    /// This node's addresses for peers on TCP `port`, of the sockets bound to a specific
    /// address (a wildcard bind does not say which address others see).
    private func ownEndpoints(port: UInt16) -> [Endpoint] {
        state.value.channels.values.compactMap { channel in
            guard let ip = channel.localAddress?.ipAddress.flatMap(IPAddress.init), !ip.isUnspecified else { return nil }
            return Endpoint(ip: ip, port: port)
        }
    }

    // MARK: persistence (see `DHTStateFile`)

    private func save() {
        let s = state.value
        guard let path = s.statePath else { return }
        let limit = DHTStateFile.maxNodesPerFamily
        let nodes = s.core.tables.ipv4.closest(to: nodeID, count: limit, now: Self.now) + s.core.tables.ipv6.closest(to: nodeID, count: limit, now: Self.now)
        let bytes = DHTStateFile.encode(id: nodeID, nodes: nodes)
        let temp = path + ".tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        let ok = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count
        close(fd)
        if ok { rename(temp, path) } else { unlink(temp) }
    }

    /// What is at the state path: nothing, a usable state, or a file that cannot be used
    /// (the node then starts fresh; the next save replaces it).
    public enum SavedState {
        case absent
        case loaded(id: NodeID, nodes: [NodeInfo])
        case unusable(String)
    }

    static let maxStateSize = DHTStateFile.maxSize

    static func load(_ path: String) -> (id: NodeID, nodes: [NodeInfo])? {
        if case .loaded(let id, let nodes) = readState(path) { return (id, nodes) }
        return nil
    }

    /// Reads the state file without ever blocking: opened non-blocking (a FIFO would wait
    /// for a writer forever), only a regular file of at most `maxStateSize` bytes is read.
    public static func readState(_ path: String) -> SavedState {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            return e == ENOENT ? .absent : .unusable("cannot open it: \(String(cString: strerror(e)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .unusable("cannot stat it: \(String(cString: strerror(errno)))") }
        guard info.st_mode & S_IFMT == S_IFREG else { return .unusable("it is not a regular file") }
        guard info.st_size <= maxStateSize else { return .unusable("it is \(info.st_size) bytes, more than a state file holds (\(maxStateSize))") }
        var bytes = [UInt8](repeating: 0, count: maxStateSize)
        var n = 0
        while n < bytes.count {
            let got = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + n, $0.count - n) }
            if got < 0 && errno == EINTR { continue }
            guard got >= 0 else { return .unusable("cannot read it: \(String(cString: strerror(errno)))") }
            if got == 0 { break }
            n += got
        }
        guard let (id, nodes) = DHTStateFile.decode(bytes[0..<n]) else {
            return .unusable("it is not a webseed DHT state file")
        }
        return .loaded(id: id, nodes: nodes)
    }

    // MARK: helpers

    static var now: Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func endpoint(_ a: SocketAddress) -> Endpoint? {
        guard let ip = a.ipAddress.flatMap(IPAddress.init), let port = a.port, port > 0, port < 65536 else { return nil }
        return Endpoint(ip: ip, port: UInt16(port))
    }
}
