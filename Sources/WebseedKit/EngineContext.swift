import Locking
import Metainfo
import PortMapping
import Swarm

/// What the engine's services hand each other as they start: a service writes its part
/// before it reports `started()`, and the services after it read it.
final class EngineContext: Sendable {
    let configuration: EngineConfiguration
    let log: EventSink
    /// What `/metrics` shows; every part records into it.
    let metrics: EngineMetrics
    let reach: Reachability
    /// Where every peer source sends what it finds (nil without a swarm: `dht`).
    let dialer: PeerDialer?
    let seeder: Seeder?

    private struct State {
        var sites: [(torrent: SeedTorrent, path: String?)] = []
        var listener: PeerListener?
        var dhtPort: Int?
        var mapper: PortMapper?
        var gatewayPort: Int?
        var sources: [any PeerSource] = []
        var trackers: TrackerClient?
        var announcing = false
        var replaceSeededSite: (@Sendable (SeedTorrent, SeedTorrent) -> Void)?
        var servePublished: (@Sendable (Int64, String, [UInt8]) -> Void)?
    }
    private let state = Locked(State())

    init(configuration: EngineConfiguration, log: EventSink, metrics: EngineMetrics = EngineMetrics(), seeder: Seeder?) {
        self.configuration = configuration
        self.log = log
        self.metrics = metrics
        self.seeder = seeder
        dialer = seeder.map { PeerDialer(seeder: $0) }
        reach = Reachability(listenHost: configuration.listen.host)
    }

    /// Seeded sites, once verified.
    var sites: [(torrent: SeedTorrent, path: String?)] {
        get { state.withLock { $0.sites } }
        set { state.withLock { $0.sites = newValue } }
    }

    var listener: PeerListener? {
        get { state.withLock { $0.listener } }
        set { state.withLock { $0.listener = newValue } }
    }

    /// The DHT node's UDP port, once it runs.
    var dhtPort: Int? {
        get { state.withLock { $0.dhtPort } }
        set { state.withLock { $0.dhtPort = newValue } }
    }

    var mapper: PortMapper? {
        get { state.withLock { $0.mapper } }
        set { state.withLock { $0.mapper = newValue } }
    }

    var gatewayPort: Int? {
        get { state.withLock { $0.gatewayPort } }
        set { state.withLock { $0.gatewayPort = newValue } }
    }

    /// `seed`'s gateway serves what is seeded: it sets this, and `--watch` calls it when a
    /// new version replaces the one served.
    /// `seed --key`'s gateway serves the published name at version (seq, site id, signed item) from now on.
    var servePublished: (@Sendable (_ seq: Int64, _ siteID: String, _ item: [UInt8]) -> Void)? {
        get { state.withLock { $0.servePublished } }
        set { state.withLock { $0.servePublished = newValue } }
    }

    var replaceSeededSite: (@Sendable (_ old: SeedTorrent, _ new: SeedTorrent) -> Void)? {
        get { state.withLock { $0.replaceSeededSite } }
        set { state.withLock { $0.replaceSeededSite = newValue } }
    }

    var peerSources: [any PeerSource] { state.withLock { $0.sources } }

    /// The tracker client, once `TrackerService` runs.
    var trackers: TrackerClient? {
        get { state.withLock { $0.trackers } }
        set { state.withLock { $0.trackers = newValue } }
    }

    /// "peers on port 6881, gateway http://localhost:8080/", for systemd's status line.
    var portsStatus: String {
        let peers = listener?.address.port.map { "peers on port \($0)" } ?? "no peer port"
        return peers + (gatewayPort.map { ", gateway http://localhost:\($0)/" } ?? "")
    }

    func add(_ source: any PeerSource) { state.withLock { $0.sources.append(source) } }

    /// Announces every seeded site on every peer source at `port`; from the first call on,
    /// `reannounce` does it again when the port changes (a router mapping).
    func announceSites(port: Int) {
        state.withLock { $0.announcing = true }
        for (t, _) in sites { announce(t, port: port) }
    }

    /// Says on every peer source and to the torrent's trackers that this host seeds `t` at TCP `port`.
    func announce(_ t: SeedTorrent, port: Int) {
        for s in peerSources { s.announce(t.shortHashes, port: port) }
        let reach = self.reach
        trackers?.track(TrackedTorrent(name: t.metainfo.name, hashes: t.shortHashes, tiers: t.metainfo.trackers + extraTrackers,
                                       port: { reach.announcedPort }, stats: { (t.uploaded, 0, 0) }, found: nil))
    }

    /// Stops saying it (a replaced version of a site): trackers are told `stopped`.
    func withdraw(_ t: SeedTorrent) {
        for s in peerSources { s.withdraw(t.shortHashes) }
        trackers?.untrack(t.shortHashes)
    }

    /// `--tracker` URLs, each its own tier after the torrent's.
    private var extraTrackers: [[String]] { configuration.trackers.map { [$0] } }

    func reannounce(port: Int) {
        guard state.withLock({ $0.announcing }) else { return }
        announceSites(port: port)
    }

    /// Peers one download takes from PEX in all.
    static let maxPEXPeers = 1000

    /// Starts a download: served to peers as it verifies, its peers looked for on every
    /// source and at `peers` (the command's --peer and the magnet's x.pe).
    func fetch(magnet: MagnetLink?, metainfo: Metainfo?, options: FetchOptions, peers: [PeerAddress],
               onEvent: @escaping @Sendable (FetchEvent) -> Void) -> FetchHandle? {
        guard let seeder, let dialer else { return nil }
        let metrics = self.metrics
        // A magnet's trackers are unrelated to each other: each is its own tier.
        let magnetTiers = (magnet?.trackers ?? []).map { [$0] } + extraTrackers
        var options = options
        let webSeeds = usableWebSeeds((metainfo?.webSeeds ?? []) + (magnet?.webSeeds ?? []) + configuration.webSeeds)
        options.usesWebSeeds = !webSeeds.isEmpty
        options.webSeedRetry = configuration.webSeedRetry
        options.usesTrackers = trackers != nil && !((metainfo?.trackers ?? []) + magnetTiers).isEmpty
        // What the download learns later (the metadata names a hybrid's v1 hash; it finished).
        let later = Locked<(metadata: (@Sendable (Metainfo) -> Void)?, completed: (@Sendable () -> Void)?)>((nil, nil))
        // Peers learned through PEX are dialled like any source's, while the download runs,
        // up to `maxPEXPeers` (each connection takes at most 200; this bounds reconnections).
        let learnedBy = Locked<(handle: FetchHandle?, offered: Int)>((nil, 0))
        let handle = seeder.fetch(magnet: magnet, metainfo: metainfo, options: options) { event in
            metrics.record(event)
            switch event {
            case .metadata(let m, _, _): later.withLock { $0.metadata }?(m)
            case .complete: later.withLock { $0.completed }?()
            case .peersLearned(_, let peers, _):
                let (handle, room) = learnedBy.withLock { l in
                    let room = max(0, Self.maxPEXPeers - l.offered)
                    l.offered += min(peers.count, room)
                    return (l.handle, room)
                }
                if let handle, !handle.progress.complete, room > 0 {
                    dialer.offer(peers.prefix(room).map { PeerAddress(host: $0.host, port: $0.port) }, to: .download(handle))
                }
            default: break
            }
            onEvent(event)
        }
        metrics.track(handle)
        learnedBy.withLock { $0.handle = handle }
        handle.addWebSeeds(webSeeds, transport: WebSeedClient(offline: configuration.offline))
        dialer.offer(peers, to: .download(handle))
        let hashes = (metainfo?.shortHashes ?? []) + [magnet?.v2InfoHash.map { Array($0.bytes.prefix(20)) }, magnet?.v1InfoHash?.bytes].compactMap { $0 }
        let unique = Array(Set(hashes))
        let announced = Locked(Set(unique))
        look(for: handle, hashes: unique, tiers: (metainfo?.trackers ?? []) + magnetTiers, name: metainfo?.name ?? magnet?.displayName)
        later.withLock {
            // A v2 magnet of a hybrid: once the metadata names its v1 hash, the v1 swarm is joined too.
            $0.metadata = { [self] m in
                let fresh = m.shortHashes.filter { h in announced.withLock { $0.insert(h).inserted } }
                guard !fresh.isEmpty else { return }
                look(for: handle, hashes: fresh, tiers: m.trackers + magnetTiers, name: m.name)
            }
            $0.completed = { [self] in trackers?.completed(announced.withLock { Array($0) }) }
        }
        return handle
    }

    /// Announces a download's `hashes` (a downloader is a peer too: it serves what it has
    /// verified) and asks every peer source and its trackers for peers.
    private func look(for handle: FetchHandle, hashes: [[UInt8]], tiers: [[String]], name: String?) {
        guard let dialer else { return }
        let reach = self.reach
        trackers?.track(TrackedTorrent(
            name: name ?? "download", hashes: hashes, tiers: tiers,
            port: { reach.announcedPort },
            stats: {
                let p = handle.progress
                return (handle.torrent?.uploaded ?? 0, p.downloaded, p.complete ? 0 : max(1, p.total - p.verified))
            },
            found: { dialer.offer($0, to: .download(handle)) }))
        let port = listener?.address.port ?? 0
        for source in peerSources {
            if port > 0 { source.announce(hashes, port: port) }
            source.lookup(hashes) { found in
                dialer.offer(found, to: .download(handle))
                return !handle.progress.complete
            }
        }
    }
}
