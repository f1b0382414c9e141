import Hashing
import Metainfo
import NIOCore
import Swarm
import Synchronization

/// The sites a gateway serves: those seeded from local data, and those fetched from the
/// swarm on demand. Safe to use from any thread.
public final class GatewaySites: Sendable {
    public final class Site: Sendable {
        public let id: String
        public let v2Hash: SHA256Digest
        /// Seeded from local data (verified before serving), or nil while fetched.
        let seeded: SeedTorrent?
        let fetch: FetchHandle?
        private let cached = Mutex<(SeedTorrent, SiteIndex)?>(nil)
        private let rates = Mutex<(at: Double, up: Int64, down: Int64, upRate: Double, downRate: Double)>((0, 0, 0, 0, 0))

        init(seeded: SeedTorrent) {
            self.seeded = seeded
            fetch = nil
            v2Hash = seeded.metainfo.v2InfoHash!
            id = SiteID.encode(v2Hash)
            cached.withLock { $0 = (seeded, SiteIndex(seeded.metainfo)) }
        }

        init(v2Hash: SHA256Digest, fetch: FetchHandle) {
            seeded = nil
            self.fetch = fetch
            self.v2Hash = v2Hash
            id = SiteID.encode(v2Hash)
        }

        /// The torrent and its index if they can be read now (always for seeded sites).
        var readyNow: (SeedTorrent, SiteIndex)? { cached.withLock { $0 } }

        /// The torrent and its index once they can be read (at once for seeded sites).
        func ready(on loop: any EventLoop) -> EventLoopFuture<(SeedTorrent, SiteIndex)> {
            if let c = cached.withLock({ $0 }) { return loop.makeSucceededFuture(c) }
            guard let fetch else { return loop.makeFailedFuture(GatewayError.unknownSite) }
            return fetch.ready().hop(to: loop).map { t in
                let entry = (t, SiteIndex(t.metainfo))
                self.cached.withLock { $0 = entry }
                return entry
            }
        }

        var torrent: SeedTorrent? { cached.withLock { $0?.0 } ?? fetch?.torrent }
        var name: String? { torrent?.metainfo.name }

        /// Upload and download rates, sampled when asked (status page).
        func sampleRates(now: Double) -> (up: Double, down: Double) {
            let up = torrent?.uploaded ?? 0
            let down = fetch?.progress.downloaded ?? 0
            return rates.withLock { r in
                let dt = now - r.at
                if r.at > 0, dt >= 0.5 {
                    r.upRate = Double(up - r.up) / dt
                    r.downRate = Double(down - r.down) / dt
                }
                if r.at == 0 || dt >= 0.5 { r = (now, up, down, r.upRate, r.downRate) }
                return (r.upRate, r.downRate)
            }
        }
    }

    public static let maxSites = 256
    private let sites = Mutex<[String: Site]>([:])
    private let order = Mutex<[String]>([])
    /// Starts fetching a site the gateway does not hold (nil: this gateway cannot fetch).
    let fetcher: (@Sendable (MagnetLink) throws -> FetchHandle)?

    public init(fetcher: (@Sendable (MagnetLink) throws -> FetchHandle)? = nil) {
        self.fetcher = fetcher
    }

    @discardableResult
    public func add(seeded t: SeedTorrent) -> String? {
        guard t.metainfo.v2InfoHash != nil else { return nil }
        let site = Site(seeded: t)
        insert(site)
        return site.id
    }

    /// Adds a site by magnet (fetched on demand); an already known site is returned as is.
    @discardableResult
    public func add(magnet: MagnetLink) throws -> String {
        guard let v2 = magnet.v2InfoHash else { throw GatewayError.notV2 }
        let id = SiteID.encode(v2)
        if let known = sites.withLock({ $0[id] }) { return known.id }
        guard let fetcher else { throw GatewayError.cannotFetch }
        // Anyone can name a site id in a URL: the number of sites is bounded.
        guard count < Self.maxSites else { throw GatewayError.tooManySites(Self.maxSites) }
        let handle = try fetcher(magnet)
        insert(Site(v2Hash: v2, fetch: handle))
        return id
    }

    /// Adds a site already being fetched (e.g. from a .torrent file).
    @discardableResult
    public func add(fetching handle: FetchHandle, v2Hash: SHA256Digest) -> String {
        let site = Site(v2Hash: v2Hash, fetch: handle)
        insert(site)
        return site.id
    }

    private func insert(_ site: Site) {
        let new = sites.withLock { s in
            guard s[site.id] == nil else { return false }
            s[site.id] = site
            return true
        }
        if new { order.withLock { $0.append(site.id) } }
    }

    func site(_ id: String) -> Site? { sites.withLock { $0[id] } }
    var all: [Site] { order.withLock { $0 }.compactMap { site($0) } }
    var count: Int { sites.withLock { $0.count } }
}

enum GatewayError: Error, CustomStringConvertible {
    case unknownSite
    case notV2
    case cannotFetch
    case tooManySites(Int)

    var description: String {
        switch self {
        case .tooManySites(let n): "this gateway already serves \(n) sites"
        case .unknownSite: "unknown site"
        case .notV2: "the magnet link has no v2 info hash (urn:btmh:1220…); the gateway serves v2 and hybrid torrents"
        case .cannotFetch: "this gateway does not fetch sites"
        }
    }
}
