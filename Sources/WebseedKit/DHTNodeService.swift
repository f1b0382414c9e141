import DHT
import DHTProtocol
import NIOCore
import NIOPosix
import ServiceLifecycle
import Swarm

#if canImport(Glibc)
import Glibc
#endif

/// A mainline DHT node: on the peer port's UDP side (bencoded datagrams there are its), or
/// on a UDP port of its own. It is a peer source: it announces sites and looks up peers.
/// Shutting down saves the node id and the good nodes.
final class DHTNodeService: EngineService, PeerSource {
    let node: DHTService
    private let loop: any EventLoop
    private let context: EngineContext
    /// Its own UDP address; nil when it shares the peer port.
    private let own: (host: String, port: Int, text: String, attempts: Int)?

    /// The well-known public routers, for real use only (never with --offline).
    static let publicRouters = ["router.bittorrent.com:6881", "dht.transmissionbt.com:6881", "router.utorrent.com:6881", "dht.libtorrent.org:25401"]

    init(loop: any EventLoop, context: EngineContext, own: (host: String, port: Int, text: String, attempts: Int)?,
         onEvent: @escaping @Sendable (DHTEvent) -> Void) throws {
        let configuration = context.configuration
        let settings = configuration.dht ?? .init()
        var nodes: [Endpoint] = []
        for b in settings.bootstrap {
            guard let e = Self.resolve(b.host, b.port) else { throw ValidationFailure("--dht-bootstrap \(b.text): cannot resolve \(b.host)") }
            nodes.append(e)
        }
        // Nodes given replace the public routers (as libtorrent's dht_bootstrap_nodes does).
        if !configuration.offline && settings.bootstrap.isEmpty {
            for r in Self.publicRouters {
                if let (h, p) = try? parseHostPort(r, option: "router"), let e = Self.resolve(h, p) { nodes.append(e) }
            }
        }
        try makeDirectories(configuration.stateDirectory)
        let statePath = configuration.stateDirectory + "/dht.state"
        if case .unusable(let why) = DHTService.readState(statePath) {
            context.log.warning("\(statePath): \(why); the DHT node starts fresh")
        }
        node = DHTService(loop: loop, bootstrap: nodes, statePath: statePath, onEvent: onEvent)
        self.loop = loop
        self.context = context
        self.own = own
    }

    /// For the peer listener's UDP side, when the node shares it.
    func install(on channel: any Channel) throws {
        guard own == nil else { return }
        try channel.pipeline.syncOperations.addHandler(DHTDatagramHandler(node, passOthers: true))
    }

    func run(started: @escaping @Sendable () -> Void) async throws {
        let channels: [any Channel]
        if let own {
            channels = try await bind(own)
        } else if let shared = context.listener?.udpChannels, !shared.isEmpty {
            channels = shared
        } else {
            return
        }
        node.attach(channels)
        warnAboutUnreachableBootstrap(channels)
        // Its "dht" event comes out on the loop: let it out before whatever follows is said.
        try? await loop.submit {}.get()
        context.dhtPort = channels[0].localAddress?.port
        context.add(self)
        started()
        try? await gracefulShutdown()
        await node.stop()
        if own != nil { for c in channels { c.close(promise: nil) } }
    }

    /// A --dht-bootstrap node of an address family the node has no socket for cannot be
    /// reached: said once, in one line, rather than left to look like a silent network.
    private func warnAboutUnreachableBootstrap(_ channels: [any Channel]) {
        let families = Set(channels.map { $0.localAddress?.protocol == .inet6 ? AddressFamily.ipv6 : .ipv4 })
        for b in context.configuration.dht?.bootstrap ?? [] {
            guard let e = Self.resolve(b.host, b.port), !families.contains(e.ip.family) else { continue }
            let has = families.contains(.ipv4) ? "IPv4" : "IPv6"
            context.log.warning("--dht-bootstrap \(b.text): an \(e.ip.family == .ipv6 ? "IPv6" : "IPv4") node, and the DHT node listens on \(has) only; not used")
        }
    }

    /// Its own sockets: one on `own.host`, or for `everyAddress` one on 0.0.0.0 and an
    /// IPv6-only one on [::] with the same port (IPv4 alone when this host has no IPv6).
    private func bind(_ own: (host: String, port: Int, text: String, attempts: Int)) async throws -> [any Channel] {
        guard own.host == everyAddress else { return [try await bindOne((own.host, own.port, own.text, own.attempts))] }
        let v4 = try await bindOne(("0.0.0.0", own.port, own.text, own.attempts))
        do {
            return [v4, try await bindOne(("::", v4.localAddress?.port ?? own.port, own.text, 1))]
        } catch let e as IOError where e.errnoCode == EAFNOSUPPORT || e.errnoCode == EADDRNOTAVAIL {
            return [v4]
        } catch {
            v4.close(promise: nil)
            throw error
        }
    }

    /// One socket; when the port is taken, the next ones are tried (`attempts` in all).
    private func bindOne(_ own: (host: String, port: Int, text: String, attempts: Int)) async throws -> any Channel {
        let ports = own.port == 0 ? [0] : Array(own.port..<min(65536, own.port + own.attempts))
        var lastError: (any Error)?
        for port in ports {
            do {
                let node = self.node
                var bootstrap = DatagramBootstrap(group: loop).channelOption(.socketOption(.so_reuseaddr), value: 1)
                    .channelOption(.receivePacketInfo, value: true)  // the address each query came to
                if own.host.contains(":") {
                    bootstrap = bootstrap.channelOption(ChannelOptions.Types.SocketOption(level: .ipv6, name: .ipv6_v6only), value: 1)
                }
                return try await bootstrap
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(DHTDatagramHandler(node, passOthers: false)) }
                    }
                    .bind(host: own.host, port: port).get()
            } catch let e as IOError where e.errnoCode == EADDRINUSE {
                lastError = e
            } catch let e as IOError where own.host == "::" && (e.errnoCode == EAFNOSUPPORT || e.errnoCode == EADDRNOTAVAIL) {
                throw e  // no IPv6 here: `bind` goes on with IPv4 alone
            } catch {
                throw ValidationFailure("cannot listen on \(own.text): \(error)")
            }
        }
        throw ValidationFailure("cannot listen on \(own.text): \(lastError.map { "\($0)" } ?? "no port")")
    }

    func announce(_ hashes: [[UInt8]], port: Int) {
        guard let p = UInt16(exactly: port), p > 0 else { return }
        for h in Set(hashes) { if let id = NodeID(bytes: h) { node.announce(id, port: p) } }
    }

    func withdraw(_ hashes: [[UInt8]]) {
        for h in Set(hashes) { if let id = NodeID(bytes: h) { node.stopAnnouncing(id) } }
    }

    func lookup(_ hashes: [[UInt8]], found: @escaping @Sendable ([PeerAddress]) -> Bool) {
        for h in Set(hashes) {
            guard let id = NodeID(bytes: h) else { continue }
            node.lookup(id) { peers in found(peers.map { PeerAddress(host: $0.ip.description, port: Int($0.port)) }) }
        }
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

/// Hands bencoded datagrams (they start with 'd') to the DHT node; on a shared socket the
/// rest go on (to uTP), on the node's own socket they are dropped.
final class DHTDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias InboundOut = AddressedEnvelope<ByteBuffer>
    private let dht: DHTService
    private let passOthers: Bool

    init(_ dht: DHTService, passOthers: Bool) {
        self.dht = dht
        self.passOthers = passOthers
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let bencoded = envelope.data.getInteger(at: envelope.data.readerIndex, as: UInt8.self) == UInt8(ascii: "d")
        if bencoded || !passOthers {
            dht.handle(Array(buffer: envelope.data), from: envelope.remoteAddress, to: envelope.metadata?.packetInfo?.destinationAddress)
        } else {
            context.fireChannelRead(data)
        }
    }
}
