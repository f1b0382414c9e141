import Locking
import Hashing
import Metainfo
import NIOCore

/// The sites a gateway serves, each a `SiteContent`: seeded from local data, or fetched on
/// demand. Safe to use from any thread.
public final class GatewaySites: Sendable {
    public final class Site: Sendable {
        public let id: String
        public let v2Hash: SHA256Digest
        let content: any SiteContent
        /// Kept once the content is ready: later requests neither wait nor rebuild the index.
        private let readied = Locked<(Metainfo, SiteIndex)?>(nil)
        private let rates = Locked<(at: Double, up: Int64, down: Int64, upRate: Double, downRate: Double)>((0, 0, 0, 0, 0))

        init(v2Hash: SHA256Digest, content: any SiteContent) {
            self.v2Hash = v2Hash
            id = SiteID.encode(v2Hash)
            self.content = content
        }

        /// The torrent and its index once the content can be read.
        func ready(deadline: NIODeadline) async throws -> (Metainfo, SiteIndex) {
            if let known = readied.withLock({ $0 }) { return known }
            let metainfo = try await content.ready(deadline: deadline)
            let entry = (metainfo, SiteIndex(metainfo))
            readied.withLock { $0 = entry }
            return entry
        }

        var name: String? { content.metainfo?.name }

        /// Upload and download rates, sampled when asked (status page).
        func sampleRates(_ stats: SiteStats, now: Double) -> (up: Double, down: Double) {
            let up = stats.uploaded, down = stats.downloaded
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
    private let sites = Locked<[String: Site]>([:])
    private let order = Locked<[String]>([])
    /// Starts fetching a site the gateway does not hold (nil: this gateway cannot fetch).
    let fetcher: (@Sendable (MagnetLink) throws -> any SiteContent)?

    public init(fetcher: (@Sendable (MagnetLink) throws -> any SiteContent)? = nil) {
        self.fetcher = fetcher
    }

    /// Adds a site whose torrent is known; nil (not added) unless it has a v2 info hash.
    @discardableResult
    public func add(_ content: any SiteContent) -> String? {
        guard let v2 = content.metainfo?.v2InfoHash else { return nil }
        return add(content, v2Hash: v2)
    }

    /// Adds a site by its v2 info hash (its torrent may still be unknown).
    @discardableResult
    public func add(_ content: any SiteContent, v2Hash: SHA256Digest) -> String {
        let site = Site(v2Hash: v2Hash, content: content)
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
        insert(Site(v2Hash: v2, content: try fetcher(magnet)))
        return id
    }

    /// Serves `content` in place of the site `id` in one step (`seed --watch`: the gateway
    /// follows the newest version; a single site stays at the root throughout).
    public func replace(_ id: String, with content: any SiteContent) {
        guard let v2 = content.metainfo?.v2InfoHash else { return }
        let site = Site(v2Hash: v2, content: content)
        sites.withLock { s in
            s[id] = nil
            s[site.id] = site
            order.withLock { o in
                o.removeAll { $0 == id || $0 == site.id }
                o.append(site.id)
            }
        }
    }

    private func insert(_ site: Site) {
        let new = sites.withLock { s in
            guard s[site.id] == nil else { return false }
            s[site.id] = site
            return true
        }
        if new { order.withLock { $0.append(site.id) } }
    }

    /// The torrent of site `id` once its content is ready (a fetched site: its metadata
    /// arrived and verified against the site's v2 info hash); throws
    /// `SiteContentError.timedOut` at `deadline`, and `GatewayError.unknownSite` for no such site.
    public func metainfo(of id: String, deadline: NIODeadline) async throws -> Metainfo {
        guard let site = site(id) else { throw GatewayError.unknownSite(id) }
        return try await site.ready(deadline: deadline).0
    }

    func site(_ id: String) -> Site? { sites.withLock { $0[id] } }
    var all: [Site] { order.withLock { $0 }.compactMap { site($0) } }
    var count: Int { sites.withLock { $0.count } }
    /// The id of the one site served, when there is exactly one.
    var onlySiteID: String? { sites.withLock { $0.count == 1 ? $0.first?.key : nil } }
}

enum GatewayError: Error, CustomStringConvertible {
    case notV2
    case cannotFetch
    case tooManySites(Int)
    case unknownSite(String)

    var description: String {
        switch self {
        case .unknownSite(let id): "no site \(id)"
        case .tooManySites(let n): "this gateway already serves \(n) sites"
        case .notV2: "the magnet link has no v2 info hash (urn:btmh:1220…); the gateway serves v2 and hybrid torrents"
        case .cannotFetch: "this gateway does not fetch sites"
        }
    }
}
