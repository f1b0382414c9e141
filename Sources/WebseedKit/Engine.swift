import DHT
import DHTProtocol
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Swarm

/// The whole of a running webseed, built from one `EngineConfiguration`: every long-running
/// part is a service in one ServiceGroup, started in dependency order and shut down
/// gracefully in reverse on SIGINT/SIGTERM (see README.md beside this file).
///
/// The engine owns which threads run things (the process-wide NIO event loop group and
/// thread pool, given to the swarm), the order of start-up and shutdown, and the output.
public struct Engine: Sendable {
    typealias Plan = (services: [any EngineService], status: @Sendable () -> String, ending: @Sendable () throws -> Void)
    private let services: [any EngineService]
    /// One line for systemd once everything runs (`systemctl status` shows it).
    private let status: @Sendable () -> String
    /// Says the last lines once every service stopped (and throws what the command fails with).
    private let ending: @Sendable () throws -> Void

    /// Checks what can be checked before anything runs (bootstrap names, directories).
    public init(_ configuration: EngineConfiguration) throws {
        let plan: Plan
        if let dht = configuration.dht, dht.nodes > 1 {
            plan = ([DHTMeasurement(configuration: configuration, settings: dht, log: EventSink(json: configuration.json))],
                    { "\(dht.nodes) DHT nodes" }, {})
        } else if let fetch = configuration.fetch, fetch.infoOnly, let name = fetch.name {
            plan = try Self.nameInfo(configuration, key: name.key, salt: name.salt)
        } else if configuration.seed == nil, configuration.fetch == nil, configuration.gateway == nil {
            plan = try Self.dhtNode(configuration)
        } else {
            plan = try Self.swarm(configuration)
        }
        (services, status, ending) = plan
    }

    /// Runs until SIGINT or SIGTERM (or until the work asked for is done), then shuts down
    /// gracefully. Throws what stopped it early: a user mistake, or a failed download.
    public func run() async throws {
        try await run(notifying: .fromEnvironment())
    }

    /// `run()`, telling `notifier` (systemd) when it is ready and when it stops.
    func run(notifying notifier: SystemdNotifier) async throws {
        let order = StartupOrder()
        var logger = Logger(label: "webseed.engine")
        logger.logLevel = .critical
        let notice = SystemdNotice(notifier: notifier, order: order, services: services.count, status: status)
        let group = ServiceGroup(configuration: .init(
            services: services.enumerated().map { order.service($1, at: $0) } + [.init(service: notice, serviceName: "SystemdNotice")],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        let groupError: (any Error)?
        do {
            try await group.run()
            groupError = nil
        } catch {
            groupError = error
        }
        if let error = order.error ?? groupError { throw error }
        try ending()
    }
}

extension Engine {
    /// `dht`: a node on its own UDP address, and nothing else.
    private static func dhtNode(_ configuration: EngineConfiguration) throws -> Plan {
        let host = configuration.listen.host
        let log = EventSink(json: configuration.json)
        let context = EngineContext(configuration: configuration, log: log, seeder: nil)
        let settings = configuration.dht ?? .init()
        let listen = configuration.listen
        let node = try DHTNodeService(loop: MultiThreadedEventLoopGroup.singleton.next(), context: context,
                                      own: (host: host, port: settings.port ?? listen.port, text: listen.text, attempts: 10)) { e in
            if let (o, text) = describeDHT(e, host: host, names: [:]) { log.emitEvent(o, text: text) }
        }
        let pending = PendingLookups()
        let services: [any EngineService] = [node, DHTSession(node: node, log: log, settings: settings, offline: configuration.offline, pending: pending)]
        return (services, { "DHT node on UDP port \(context.dhtPort ?? 0)" }, {
            let missing = pending.hashes.withLock { $0 }
            for hash in missing.sorted(by: { $0.hex < $1.hex }) {
                log.lookupDone(hash, peers: nil)
            }
            if settings.exitAfterLookups, !missing.isEmpty {
                throw ValidationFailure("no peers found within \(Int(settings.timeout)) s for \(missing.map(\.hex).sorted().joined(separator: ", "))")
            }
        })
    }

    /// A swarm: `seed`, `get` or `gateway`.
    private static func swarm(_ configuration: EngineConfiguration) throws -> Plan {
        let group = MultiThreadedEventLoopGroup.singleton
        let threads = NIOThreadPool.singleton
        let host = configuration.listen.host
        let log = EventSink(json: configuration.json, style: configuration.fetch == nil ? .serving : .downloading)
        var seederConfiguration = SeederConfiguration()
        if let seed = configuration.seed {
            seederConfiguration.uploadSlots = seed.uploadSlots
            seederConfiguration.maxPeers = seed.maxPeers
        }
        let metrics = EngineMetrics()
        let seeder = Seeder(group: group, threadPool: threads, configuration: seederConfiguration) { e in
            log.seederEvent(e)
            metrics.record(e)
        }
        metrics.countPeers { seeder.peerCount }
        let context = EngineContext(configuration: configuration, log: log, metrics: metrics, seeder: seeder)
        var services: [any EngineService] = []

        // `seed DIR --key`: SitePreparation hands the first version to the publisher.
        let first = configuration.seed?.key == nil ? nil : FirstVersion()
        var preparation: SitePreparation?
        if let seed = configuration.seed {
            try makeDirectories(configuration.stateDirectory + "/resume")
            preparation = SitePreparation(context: context, settings: seed, state: configuration.stateDirectory, firstVersion: first)
            services.append(preparation!)
        }
        let node = try configuration.dht.map { settings in
            let names = SiteNames(context: context)
            return try DHTNodeService(loop: seeder.eventLoop, context: context,
                                      own: settings.port.map { (host: host, port: $0, text: configuration.listen.text, attempts: 1) }) { e in
                metrics.record(e)
                if let (o, text) = describeDHT(e, host: host, names: names.current) { log.emitEvent(o, text: text) }
            }
        }
        services.append(PeerListenerService(context: context, seeder: seeder) { channel in try node?.install(on: channel) })
        if let node { services.append(node) }
        services.append(TrackerService(context: context))
        if configuration.localDiscovery, !configuration.offline, !isLoopback(host) {
            services.append(LocalDiscoveryService(context: context))
        }
        if let mapping = configuration.portMapping, !configuration.offline, !isLoopback(host) {
            services.append(PortMappingService(context: context, settings: mapping))
        }
        if let gateway = configuration.gateway {
            services.append(GatewayService(context: context, settings: gateway))
        }
        if let seed = configuration.seed, let key = seed.key, let first, let preparation {
            guard let node else { throw ValidationFailure("--key publishes the site's name on the DHT, which --no-dht turns off") }
            services.append(NamePublisher(context: context, settings: seed, key: key, node: node.node, first: first, preparation: preparation))
        }

        if let fetch = configuration.fetch {
            try makeDirectories(configuration.stateDirectory + "/downloads")
            let outcome = FetchOutcome()
            if let name = fetch.name {
                services.append(NameFetchSession(context: context, settings: fetch, key: name.key, salt: name.salt, outcome: outcome))
            } else {
                services.append(FetchSession(context: context, settings: fetch, outcome: outcome))
            }
            return (services, { "downloading; " + context.portsStatus }, {
                let o = outcome.state.withLock { $0 }
                if let e = o.failure { throw ValidationFailure(e.description) }
                if let m = o.message { throw ValidationFailure(m) }
                log.stopped(downloaded: o.downloaded, uploaded: o.uploaded, complete: o.complete)
            })
        } else if configuration.seed != nil {
            services.append(SeedSession(context: context))
            return (services, { "seeding \(context.sites.count) site\(context.sites.count == 1 ? "" : "s"); " + context.portsStatus },
                    { log.stopped(uploaded: context.sites.reduce(0) { $0 + $1.torrent.uploaded }) })
        } else {
            try makeDirectories(configuration.stateDirectory + "/gateway")
            services.append(GatewaySession(context: context))
            return (services, { "serving sites on demand; " + context.portsStatus }, { log.stopped(uploaded: 0) })
        }
    }
}

/// Site names by DHT hash, for the `dht_announced` events of `seed`.
private struct SiteNames: Sendable {
    let context: EngineContext
    var current: [NodeID: String] {
        Dictionary(context.sites.flatMap { (t, _) in t.shortHashes.compactMap { h in NodeID(bytes: h).map { ($0, t.metainfo.name) } } },
                   uniquingKeysWith: { a, _ in a })
    }
}
