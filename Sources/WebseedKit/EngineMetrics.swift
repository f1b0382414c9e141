import Locking
import CoreMetrics
import DHT
import Metainfo
import class Prometheus.PrometheusCollectorRegistry
import struct Prometheus.PrometheusMetricsFactory
import Swarm

/// The engine's numbers for Prometheus (`GET /metrics` on the gateway's own origin), kept in
/// a registry of its own: every metric is made with this engine's factory, never through
/// the process-wide `MetricsSystem`, so that two engines (or a test) do not mix.
///
/// Counts that happen as events (bans, hash failures, the DHT's table size) are recorded
/// as they come; what the swarm only keeps as running totals (bytes up and down, pieces
/// verified, peers connected) is read on each scrape and the growth since the last one added.
final class EngineMetrics: Sendable {
    static let prefix = "webseed_"

    let registry: PrometheusCollectorRegistry
    let factory: any MetricsFactory
    private let peers: Gauge
    private let piecesVerified: Counter
    private let hashFailures: Counter
    private let bans: Counter
    private let dhtNodes: Gauge

    /// What each site has done so far, as the swarm counts it.
    struct SiteTotals: Sendable, Equatable {
        var uploaded: Int64 = 0
        var downloaded: Int64 = 0
        var pieces = 0
    }

    private struct State {
        var peerCount: (@Sendable () -> Int)?
        /// Read on each scrape; nil while a site's id is not known yet (a magnet's metadata).
        var sites: [@Sendable () -> (id: String, totals: SiteTotals)?] = []
        /// As of the last scrape, by site id (a site fetched twice is still one site).
        var seen: [String: SiteTotals] = [:]
        var bytes: [String: (up: Counter, down: Counter)] = [:]
    }
    private let state = Locked(State())

    init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        let factory = PrometheusMetricsFactory(registry: registry)
        self.factory = factory
        peers = Gauge(label: Self.prefix + "peers", factory: factory)
        piecesVerified = Counter(label: Self.prefix + "pieces_verified_total", factory: factory)
        hashFailures = Counter(label: Self.prefix + "hash_failures_total", factory: factory)
        bans = Counter(label: Self.prefix + "bans_total", factory: factory)
        dhtNodes = Gauge(label: Self.prefix + "dht_nodes", factory: factory)
    }

    /// Prometheus' text format, with the totals read now.
    func text() -> String {
        update()
        return registry.emitToString()
    }

    // MARK: what is read on each scrape

    func countPeers(_ count: @escaping @Sendable () -> Int) {
        state.withLock { $0.peerCount = count }
    }

    func track(_ torrent: SeedTorrent) {
        let id = Self.siteID(torrent.metainfo)
        track { (id, SiteTotals(uploaded: torrent.uploaded, pieces: torrent.pieces.cardinality)) }
    }

    func track(_ download: FetchHandle) {
        track {
            guard let torrent = download.torrent else { return nil }
            let p = download.progress
            return (Self.siteID(torrent.metainfo), SiteTotals(uploaded: torrent.uploaded, downloaded: p.downloaded, pieces: p.pieces))
        }
    }

    private func track(_ site: @escaping @Sendable () -> (id: String, totals: SiteTotals)?) {
        state.withLock { $0.sites.append(site) }
    }

    /// The site id names a site (a v1-only torrent, which has none, its v1 info hash).
    static func siteID(_ m: Metainfo) -> String { m.siteID ?? m.v1InfoHash?.hex ?? m.name }

    private func update() {
        state.withLock { s in
            if let count = s.peerCount { peers.record(Int64(count())) }
            var now: [String: SiteTotals] = [:]
            for read in s.sites {
                guard let (id, t) = read() else { continue }
                now[id, default: SiteTotals()].uploaded += t.uploaded
                now[id, default: SiteTotals()].downloaded += t.downloaded
                now[id, default: SiteTotals()].pieces += t.pieces
            }
            for (id, t) in now {
                let before = s.seen[id] ?? SiteTotals()
                let counters = s.bytes[id] ?? (
                    up: Counter(label: Self.prefix + "uploaded_bytes_total", dimensions: [("site", id)], factory: factory),
                    down: Counter(label: Self.prefix + "downloaded_bytes_total", dimensions: [("site", id)], factory: factory))
                s.bytes[id] = counters
                // Counters only grow: a total that went down (a download started over) adds
                // nothing until it passes what was already counted.
                counters.up.increment(by: max(0, t.uploaded - before.uploaded))
                counters.down.increment(by: max(0, t.downloaded - before.downloaded))
                piecesVerified.increment(by: max(0, t.pieces - before.pieces))
                s.seen[id] = SiteTotals(uploaded: max(t.uploaded, before.uploaded), downloaded: max(t.downloaded, before.downloaded),
                                        pieces: max(t.pieces, before.pieces))
            }
        }
    }

    // MARK: what is counted as it happens

    func record(_ event: SeederEvent) {
        // A seeded file that no longer matches its hashes.
        if case .fileChanged = event { hashFailures.increment() }
    }

    func record(_ event: FetchEvent) {
        switch event {
        case .peerBanned: bans.increment()
        // Every piece that failed, also one from several peers that bans no one.
        case .hashFailed: hashFailures.increment()
        default: break
        }
    }

    func record(_ event: DHTEvent) {
        if case .nodes(let count) = event { dhtNodes.record(Int64(count)) }
    }
}
