import ArgumentParser
import DHT
import DHTProtocol
import Dispatch
import FoundationEssentials
import Hashing
import Metainfo
import NIOCore
import NIOPosix
import Swarm
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// DHT options shared by `seed`, `get`, `gateway` and `dht`.
struct DHTOptions: ParsableArguments {
    @Flag(name: .customLong("no-dht"), help: "Run no DHT node.")
    var noDHT = false

    @Option(name: .customLong("dht-bootstrap"), help: "Join the DHT through this node (HOST:PORT) instead of the public routers; repeatable.")
    var bootstrap: [String] = []

    @Option(name: .customLong("dht-port"), help: "UDP port of the DHT node (default: the peer port, shared with it).")
    var port: Int?

    /// The well-known public routers, for real use only (never with --offline).
    static let publicRouters = ["router.bittorrent.com:6881", "dht.transmissionbt.com:6881", "router.utorrent.com:6881", "dht.libtorrent.org:25401"]

    /// Enables the node on `seeder` (before it listens). nil with --no-dht.
    func start(on seeder: Seeder, offline: Bool, state: String, report: @escaping @Sendable (DHTEvent) -> Void) throws -> DHTService? {
        guard !noDHT else { return nil }
        var nodes: [Endpoint] = []
        for text in bootstrap {
            let (host, port) = try parseHostPort(text, option: "--dht-bootstrap")
            guard let e = Self.resolve(host, port) else { throw ValidationFailure("--dht-bootstrap \(text): cannot resolve \(host)") }
            nodes.append(e)
        }
        // Nodes given replace the public routers (as libtorrent's dht_bootstrap_nodes does).
        if !offline && bootstrap.isEmpty {
            for r in Self.publicRouters {
                if let (h, p) = try? parseHostPort(r, option: "router"), let e = Self.resolve(h, p) { nodes.append(e) }
            }
        }
        if let port, !(0...65535).contains(port) { throw ValidationFailure("invalid --dht-port \(port)") }
        try makeDirectories(state)
        return seeder.enableDHT(bootstrap: nodes, statePath: state + "/dht.state", port: port, onEvent: report)
    }

    static func resolve(_ host: String, _ port: Int) -> Endpoint? {
        if let ip = IPAddress(host) { return Endpoint(ip: ip, port: UInt16(port)) }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else { return nil }
        defer { freeaddrinfo(result) }
        var addr = first.pointee.ai_addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        inet_ntop(AF_INET, &addr, &text, socklen_t(text.count))
        return IPAddress(String(decoding: text.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))
            .map { Endpoint(ip: $0, port: UInt16(port)) }
    }
}

/// One JSON object (and a text line, or nil) for a DHT event.
func describeDHT(_ e: DHTEvent, host: String, names: [NodeID: String]) -> ([String: JSON], String?)? {
    switch e {
    case .started(let id, let udpPort):
        return (["event": "dht", "node_id": .string(id), "host": .string(host), "port": JSON(udpPort)], "dht node \(id.prefix(12))… on UDP port \(udpPort)")
    case .announced(let hash, let nodes):
        var o: [String: JSON] = ["event": "dht_announced", "hash": .string(hash.hex), "nodes": JSON(nodes)]
        if let n = names[hash] { o["site"] = .string(n) }
        return (o, nil)
    case .peers(let hash, let peers, let seconds):
        return (["event": "dht_peers", "hash": .string(hash.hex), "peers": JSON(peers.map(\.description)), "ms": .double(seconds * 1000)], nil)
    case .nodes(let n):
        return (["event": "dht_nodes", "count": JSON(n)], nil)
    case .externalAddress(let ip):
        return (["event": "dht_external_address", "ip": .string(ip)], "dht: other nodes see this host as \(ip)")
    }
}

struct DHTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dht",
        abstract: "Run a mainline DHT node on its own: look up peers of torrents, announce them.",
        discussion: """
        HASH is 40 hex digits (a v1 info hash or the first 20 bytes of a v2 one) or a magnet link \
        (its btih and truncated btmh hashes). The node id and known nodes are kept in the state \
        directory and reused.
        """
    )

    @Option(help: "UDP address, HOST:PORT (default 0.0.0.0:6881; port 0 picks any).")
    var listen: String = "0.0.0.0:6881"

    @OptionGroup var dht: DHTOptions

    @Option(name: .customLong("state-dir"), help: "Where the node id and routing table are kept (default: ~/.local/share/webseed).")
    var stateDir: String?

    @Flag(help: "Never contact the public DHT routers; join only through --dht-bootstrap.")
    var offline = false

    @Option(help: "Look up peers of HASH; repeatable.")
    var lookup: [String] = []

    @Option(help: "Announce HASH:PORT (this host, TCP port PORT); repeatable.")
    var announce: [String] = []

    @Flag(name: .customLong("exit-after-lookups"), help: "Exit 0 once every lookup found a peer (1 if --timeout passes first).")
    var exitAfterLookups = false

    @Option(help: "With --exit-after-lookups: give up after this many seconds (default 30).")
    var timeout: Double = 30

    @Option(help: ArgumentHelp("Run N nodes in this process, node i joining through node i-1 (for measurements).", visibility: .hidden))
    var nodes: Int = 1

    @Flag(help: "Log events as JSON lines instead of text.")
    var json = false

    func run() throws {
        try reportingErrors {
            guard !dht.noDHT else { throw ValidationFailure("--no-dht leaves nothing to run") }
            if nodes > 1 { return try runMany() }
            let (host, port) = try parseHostPort(listen, option: "--listen")
            let lookups = try lookup.flatMap { try Self.hashes($0) }
            let announces = try announce.flatMap { text -> [(NodeID, UInt16)] in
                guard let colon = text.lastIndex(of: ":"), let p = UInt16(text[text.index(after: colon)...]), p > 0 else {
                    throw ValidationFailure("invalid --announce '\(text)': use HASH:PORT")
                }
                return try Self.hashes(String(text[..<colon])).map { ($0, p) }
            }
            let log = EventLog(json: json)
            let stop = StopSignal()
            let seeder = Seeder()
            let service = try dht.start(on: seeder, offline: offline, state: stateDir ?? defaultStateDirectory(), report: { e in
                if let (o, text) = describeDHT(e, host: host, names: [:]) { log.emitEvent(o, text: text) }
            })
            do {
                _ = try seeder.listen(host: host, port: port)
            } catch {
                seeder.shutdown()
                throw ValidationFailure("cannot listen on \(listen): \(error)")
            }
            let pendingLookups = Mutex(Set(lookups))
            let done = Mutex(false)
            for (hash, p) in announces { service?.announce(hash, port: p) }
            for hash in lookups {
                service?.lookup(hash, every: 5) { peers in
                    log.emitEvent(["event": "lookup_done", "hash": .string(hash.hex), "found": JSON(peers.count)], text: "\(hash.hex): \(peers.map(\.description).joined(separator: " "))")
                    let left = pendingLookups.withLock { s in s.remove(hash); return s.count }
                    if left == 0, exitAfterLookups, !done.withLock({ v in defer { v = true }; return v }) { stop.signal() }
                    return false
                }
            }
            log.ready(offline: offline)
            if exitAfterLookups {
                DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { stop.signal() }
            }
            stop.wait()
            seeder.shutdown()
            let missing = pendingLookups.withLock { $0 }
            for hash in missing.sorted(by: { $0.hex < $1.hex }) {
                log.emitEvent(["event": "lookup_done", "hash": .string(hash.hex), "found": JSON(0)], text: "\(hash.hex): no peers found")
            }
            if exitAfterLookups, !missing.isEmpty {
                throw ValidationFailure("no peers found within \(Int(timeout)) s for \(missing.map(\.hex).sorted().joined(separator: ", "))")
            }
        }
    }

    /// Many nodes on one event loop, each with its own UDP socket: node i joins through node
    /// i-1 (node 0 through --dht-bootstrap). Announces go out from node 0, lookups from the
    /// last node. Used to measure lookups and memory per node.
    private func runMany() throws {
        guard nodes <= 2000 else { throw ValidationFailure("--nodes is at most 2000") }
        let (host, _) = try parseHostPort(listen, option: "--listen")
        var bootstrap: [Endpoint] = []
        for text in dht.bootstrap {
            let (h, p) = try parseHostPort(text, option: "--dht-bootstrap")
            guard let e = DHTOptions.resolve(h, p) else { throw ValidationFailure("--dht-bootstrap \(text): cannot resolve \(h)") }
            bootstrap.append(e)
        }
        let log = EventLog(json: json)
        let stop = StopSignal()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var services: [DHTService] = []
        var channels: [any Channel] = []
        for i in 0..<nodes {
            let index = i
            let service = DHTService(loop: group.next(), bootstrap: bootstrap, statePath: nil) { e in
                if case .peers(let hash, let peers, let seconds) = e {
                    log.emitEvent(["event": "dht_peers", "node": JSON(index), "hash": .string(hash.hex), "peers": JSON(peers.map(\.description)),
                                   "ms": .double(seconds * 1000)], text: nil)
                }
            }
            let channel = try DatagramBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(DatagramToDHT(service)) }
                }
                .bind(host: host, port: 0).wait()
            service.attach(channel)
            log.emitEvent(["event": "dht", "node": JSON(i), "node_id": .string(service.nodeID.hex), "host": .string(host),
                           "port": JSON(channel.localAddress?.port ?? 0)], text: nil)
            if let port = channel.localAddress?.port, let ip = IPAddress(host) { bootstrap = [Endpoint(ip: ip, port: UInt16(port))] }
            services.append(service)
            channels.append(channel)
        }
        for a in announce {
            guard let colon = a.lastIndex(of: ":"), let p = UInt16(a[a.index(after: colon)...]) else { continue }
            for h in try Self.hashes(String(a[..<colon])) { services[0].announce(h, port: p) }
        }
        for l in lookup { for h in try Self.hashes(l) { services[nodes - 1].lookup(h, every: 5) { _ in false } } }
        log.ready(offline: offline)
        let all = services
        DispatchQueue.global().async {
            while true {
                sleep(5)
                let sizes = all.map(\.nodeCount)
                log.emitEvent(["event": "dht_nodes", "count": JSON(sizes.reduce(0, +) / max(1, sizes.count)), "min": JSON(sizes.min() ?? 0)], text: nil)
            }
        }
        stop.wait()
        for s in services { s.stop() }
        for c in channels { try? c.close().wait() }
        try? group.syncShutdownGracefully()
    }

    /// 40 hex digits, or a magnet's hashes (btih, and btmh truncated to 20 bytes).
    static func hashes(_ text: String) throws -> [NodeID] {
        if text.lowercased().hasPrefix("magnet:") {
            let m: MagnetLink
            do { m = try MagnetLink(parsing: text) } catch { throw ValidationFailure("invalid magnet link: \(error)") }
            return [m.v2InfoHash.map { NodeID(truncating: $0) }, m.v1InfoHash.map { NodeID($0) }].compactMap { $0 }
        }
        guard let id = NodeID(hex: text.lowercased()) else { throw ValidationFailure("invalid hash '\(text)': use 40 hex digits or a magnet link") }
        return [id]
    }
}

/// Bencoded datagrams to a DHT node (the standalone nodes of `--nodes`).
final class DatagramToDHT: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let dht: DHTService
    init(_ dht: DHTService) { self.dht = dht }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        dht.handle(Array(buffer: envelope.data), from: envelope.remoteAddress)
    }
}
