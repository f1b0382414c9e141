import Locking
import Gateway
import Hashing
import Hummingbird
import Metainfo
import Names
import ServiceLifecycle
import Swarm

/// The HTTP gateway: Hummingbird's Application, run as this service (so it shuts down
/// gracefully with the rest). Everything the engine knows about the Gateway module is in
/// this file: which sites it serves (`seed`: the seeded ones; `gateway`: fetched on
/// demand), its options, and where peers reach this host for the status page.
struct GatewayService: EngineService {
    let context: EngineContext
    var log: EventSink { context.log }
    let settings: EngineConfiguration.Gateway
    /// How many next ports to try when the one asked for is taken.
    var attempts = 10
    /// The downloads this gateway started, by site id.
    private let fetched = FetchedHandles()

    func run(started: @escaping @Sendable () -> Void) async throws {
        let sites = try makeSites()
        let resolver = nameResolver(sites)
        defer { resolver?.stop() }
        var names = resolver.map { GatewayNames(follower: $0) }
        for name in settings.names { names?.add(name) }
        if let key = context.configuration.seed?.key {
            // `seed --key`: the name published here is served here, at each version as it is published.
            let own = GatewayNames(follower: PublishedHere())
            let name = SiteName.name(for: key.publicKey)
            own.add(name)
            context.servePublished = { seq, siteID, item in own.serve(name, .init(siteID: siteID, seq: seq, item: item)) }
            names = own
        }
        let server = GatewayServer(sites: sites, names: names, options: options())
        defer { server.stop() }
        let listen = settings.listen
        let single = context.configuration.seed != nil && context.sites.count == 1
        let ports = listen.port == 0 ? [0] : Array(listen.port..<min(65536, listen.port + attempts))
        for (i, port) in ports.enumerated() {
            let running = Locked(false)
            let app = server.application(host: listen.host, port: port) { [context, log] bound in
                running.withLock { $0 = true }
                context.gatewayPort = bound
                log.gateway(host: listen.host, port: bound, single: single)
                started()
            }
            do {
                try await app.run()
                return
            } catch {
                // Taken before it ran: the next port. Anything else, or after it ran, is an error.
                if !running.withLock({ $0 }), "\(error)".contains("Address already in use"), i < ports.count - 1 { continue }
                throw ValidationFailure("cannot serve HTTP on \(listen.text): \(error)")
            }
        }
    }

    private func options() -> GatewayOptions {
        var options = GatewayOptions()
        options.spa = settings.spa
        options.listenHost = settings.listen.host
        options.verifyInBrowser = settings.verifyInBrowser
        options.verifySources = settings.verifySources
        options.maxConnections = settings.maxConnections
        let metrics = context.metrics
        options.metrics = { metrics.text() }
        options.requestMetrics = metrics.factory
        let reach = context.reach
        options.peerEndpoint = {
            PeerEndpoint(address: reach.peerAddress, mapping: reach.mapped.map {
                PeerEndpoint.Mapping(method: $0.method.rawValue, methodLabel: $0.method.label, externalAddress: $0.externalAddress,
                                     tcp: $0.externalPort(.tcp), udp: $0.externalPort(.udp))
            })
        }
        options.trackers = { [context] in context.trackers.map(trackerStates) ?? [] }
        options.peerListeners = { [context] in context.listener.map { [$0.address] + ($0.address6.map { [$0] } ?? []) } ?? [] }
        if context.configuration.seed != nil {
            options.singleSiteAtRoot = true
            options.seededHashes = { [context] in context.sites.flatMap { $0.torrent.shortHashes } }
            // SeedTorrent reports a change once, from the read that withdraws the file.
            let log = self.log
            options.onFileChanged = { site, path in log.seederEvent(.fileChanged(torrent: site, path: path)) }
        } else {
            options.timeout = settings.timeout
            options.fetchUnknownIDs = !context.configuration.peers.isEmpty || !context.peerSources.isEmpty
        }
        return options
    }

    /// Names are followed through the DHT node (none without one, nor for `seed`).
    private func nameResolver(_ sites: GatewaySites) -> NameResolver? {
        guard context.configuration.seed == nil,
              let dht = context.peerSources.lazy.compactMap({ $0 as? DHTNodeService }).first?.node else { return nil }
        var resolving = NameResolver.Settings()
        resolving.refresh = settings.nameRefresh
        resolving.metadataTimeout = settings.timeout
        resolving.stateDirectory = context.configuration.stateDirectory
        let context = self.context, log = self.log, fetched = self.fetched
        // A name's next version is asked first of the peers its current one came from (its
        // publisher most likely seeds both), before any DHT lookup of the new torrent ends.
        resolving.peersOf = { siteID in
            guard let handle = fetched[siteID], let dialer = context.dialer else { return [] }
            return dialer.peers(offeredTo: handle).map(\.description)
        }
        return NameResolver(sites: sites, settings: resolving, lookup: { key, salt in await dht.item(key: key, salt: salt) }) { e in
            log.nameEvent(e, port: context.gatewayPort)
        }
    }

    private func makeSites() throws -> GatewaySites {
        if context.configuration.seed != nil {
            let sites = GatewaySites()
            for (t, _) in context.sites { sites.add(SeededSite(torrent: t)) }
            context.replaceSeededSite = { old, new in
                if let id = old.metainfo.siteID { sites.replace(id, with: SeededSite(torrent: new)) }
            }
            return sites
        }
        let start = fetcher()
        let sites = GatewaySites { magnet in FetchedSite(handle: try start(magnet, nil)) }
        for (magnet, metainfo) in settings.sources {
            if let metainfo, let v2 = metainfo.v2InfoHash {
                sites.add(FetchedSite(handle: try start(nil, metainfo)), v2Hash: v2)
            } else if let magnet {
                _ = try sites.add(magnet: magnet)
            }
        }
        return sites
    }

    /// Fetched sites live under the state directory, one folder per site id; a download
    /// fails only after an hour without any peer (the gateway keeps trying). A file some
    /// site already fetched completely (the same pieces root) is taken from there, not from
    /// the network: a name's next version downloads only what changed.
    private func fetcher() -> @Sendable (MagnetLink?, Metainfo?) throws -> FetchHandle {
        let context = self.context, log = self.log
        let state = context.configuration.stateDirectory + "/gateway"
        let known = context.configuration.peers.map { PeerAddress(host: $0.host, port: $0.port) }
        let fetched = self.fetched
        return { magnet, metainfo in
            guard let v2 = metainfo?.v2InfoHash ?? magnet?.v2InfoHash else { throw ValidationFailure("the site has no v2 info hash") }
            var options = FetchOptions(directory: state + "/" + SiteID.encode(v2), defaultParent: state, stateDirectory: state)
            options.timeout = 3600
            for torrent in fetched.all.compactMap(\.torrent) {
                options.reuse.merge(ReusableFiles.byPiecesRoot(torrent)) { first, _ in first }
            }
            var peers = known
            for pe in magnet?.peers ?? [] { if let (h, p) = try? parseHostPort(pe, option: "x.pe") { peers.append(PeerAddress(host: h, port: p)) } }
            let handle = context.fetch(magnet: magnet, metainfo: metainfo, options: options, peers: peers) { event in
                if case .failed(let e) = event { log.warning("site \(SiteID.encode(v2)): \(e.description)") }
            }
            guard let handle else { throw ValidationFailure("this engine runs no swarm") }
            fetched.add(handle, siteID: SiteID.encode(v2))
            return handle
        }
    }
}

/// Every tracker of every announced hash, as the status page shows it.
private func trackerStates(_ client: TrackerClient) -> [TrackerState] {
    let at = client.now
    return client.statuses
        .sorted { ($0.name, $0.tracker.url, HexCoding.encode($0.hash)) < ($1.name, $1.tracker.url, HexCoding.encode($1.hash)) }
        .map { s in
            let t = s.tracker
            let state = t.lastAnnounce == nil ? "not yet announced" : t.lastError != nil ? "failing" : t.started ? "working" : "stopped"
            return TrackerState(url: t.url, site: s.name, hash: HexCoding.encode(s.hash), state: state, lastError: t.lastError,
                                peers: t.lastPeers, secondsAgo: t.lastAnnounce.map { Int(max(0, at - $0)) })
        }
}

/// The follower of the one name `seed --key` publishes: nothing to look up, the publisher
/// says each version as it puts it.
private struct PublishedHere: NameFollower {
    func follow(_ name: String, in names: GatewayNames) {}
    func miss(_ name: String) {}
    func unfollow(_ name: String) {}
}

/// The downloads a gateway started, by site id: their verified files feed the next ones
/// (`FetchOptions.reuse`), and the peers they were offered a name's next version.
private final class FetchedHandles: Sendable {
    private let handles = Locked<[String: FetchHandle]>([:])
    func add(_ handle: FetchHandle, siteID: String) { handles.withLock { $0[siteID] = handle } }
    subscript(siteID: String) -> FetchHandle? { handles.withLock { $0[siteID] } }
    var all: [FetchHandle] { handles.withLock { Array($0.values) } }
}
