import DHT
import DHTProtocol
import NIOCore
import NIOPosix
import ServiceLifecycle

/// `dht --nodes N` (hidden, for measurements): N nodes on one event loop, each with its own
/// UDP socket, node i joining through node i-1 (node 0 through --dht-bootstrap). Announces
/// go out from node 0, lookups from the last node; the mean table size is logged every 5 s.
struct DHTMeasurement: EngineService {
    let configuration: EngineConfiguration
    let settings: EngineConfiguration.DHT
    let log: EventSink

    func run(started: @escaping @Sendable () -> Void) async throws {
        let host = configuration.listen.host
        var bootstrap: [Endpoint] = []
        for b in settings.bootstrap {
            guard let e = DHTNodeService.resolve(b.host, b.port) else { throw ValidationFailure("--dht-bootstrap \(b.text): cannot resolve \(b.host)") }
            bootstrap.append(e)
        }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        var services: [DHTService] = []
        var channels: [any Channel] = []
        let log = self.log
        for i in 0..<settings.nodes {
            let service = DHTService(loop: loop, bootstrap: bootstrap, statePath: nil) { e in
                if case .peers(let hash, let peers, let seconds) = e {
                    log.emitEvent(["event": "dht_peers", "node": JSON(i), "hash": .string(hash.hex), "peers": JSON(peers.map(\.description)),
                                   "ms": .double(seconds * 1000)], text: nil)
                }
            }
            let channel = try await DatagramBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(DHTDatagramHandler(service, passOthers: false)) }
                }
                .bind(host: host, port: 0).get()
            service.attach(channel)
            log.emitEvent(["event": "dht", "node": JSON(i), "node_id": .string(service.nodeID.hex), "host": .string(host),
                           "port": JSON(channel.localAddress?.port ?? 0)], text: nil)
            if let port = channel.localAddress?.port, let ip = IPAddress(host) { bootstrap = [Endpoint(ip: ip, port: UInt16(port))] }
            services.append(service)
            channels.append(channel)
        }
        for (hash, port) in settings.announces { services[0].announce(hash, port: port) }
        for hash in settings.lookups { services[services.count - 1].lookup(hash, every: 5) { _ in false } }
        log.ready(offline: configuration.offline)
        started()
        let all = services
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: .seconds(5))
                var sizes: [Int] = []
                for s in all { sizes.append(await s.nodeCount()) }
                log.emitEvent(["event": "dht_nodes", "count": JSON(sizes.reduce(0, +) / max(1, sizes.count)), "min": JSON(sizes.min() ?? 0)], text: nil)
            }
        }
        for s in services { await s.stop() }
        for c in channels { c.close(promise: nil) }
    }
}
