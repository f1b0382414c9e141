/// Peers announced to us (announce_peer), per info hash, for get_peers replies.
///
/// Keyed by address: a second announce from the same IP for the same info hash updates
/// its port instead of adding a peer, so one host cannot fill a swarm's slots by
/// announcing many ports. Entries expire `lifetime` after their last announce.
public struct PeerStore: Sendable {
    public struct Limits: Sendable {
        public var perInfoHash = 500
        public var total = 50_000
        public var lifetime: Double = 30 * 60
        /// When the store is full, expired entries are swept at most this often, so a
        /// flood of announces cannot make every one of them scan the whole store.
        public var sweepInterval: Double = 60
        public init() {}
    }

    public enum Outcome: Sendable, Equatable {
        case added
        /// Known address: port, seed flag and expiry updated.
        case refreshed
        /// The swarm was full; the entry closest to expiry made room.
        case replacedOldest
        case rejected(Rejection)
    }

    public enum Rejection: Sendable, Equatable {
        case portZero
        case unspecifiedAddress
        /// `limits.total` reached and nothing has expired.
        case storeFull
    }

    private struct Entry: Sendable {
        var port: UInt16
        var seed: Bool
        var expires: Double
    }

    public let limits: Limits
    private var swarms: [NodeID: [IPAddress: Entry]] = [:]
    /// Entries held, expired ones included until swept.
    public private(set) var count = 0
    private var lastSweep = -Double.infinity

    public init(limits: Limits = Limits()) {
        precondition(limits.perInfoHash > 0 && limits.total > 0 && limits.lifetime > 0)
        self.limits = limits
    }

    /// Records an announce. `peer.port` is the port to hand out (the datagram's source
    /// port when the announce had implied_port).
    public mutating func announce(_ peer: Endpoint, for infoHash: NodeID, seed: Bool = false, now: Double) -> Outcome {
        guard peer.port != 0 else { return .rejected(.portZero) }
        guard !peer.ip.isUnspecified else { return .rejected(.unspecifiedAddress) }
        let fresh = Entry(port: peer.port, seed: seed, expires: now + limits.lifetime)
        if swarms[infoHash]?[peer.ip] != nil {
            swarms[infoHash]![peer.ip] = fresh
            return .refreshed
        }
        if var swarm = swarms[infoHash], swarm.count >= limits.perInfoHash {
            let before = swarm.count
            swarm = swarm.filter { $0.value.expires > now }
            count -= before - swarm.count
            if swarm.count >= limits.perInfoHash, let oldest = swarm.min(by: { $0.value.expires < $1.value.expires }) {
                swarm[oldest.key] = nil
                swarm[peer.ip] = fresh
                swarms[infoHash] = swarm
                return .replacedOldest
            }
            swarms[infoHash] = swarm
        }
        if count >= limits.total {
            guard now - lastSweep >= limits.sweepInterval else { return .rejected(.storeFull) }
            removeExpired(now: now)
            guard count < limits.total else { return .rejected(.storeFull) }
        }
        swarms[infoHash, default: [:]][peer.ip] = fresh
        count += 1
        return .added
    }

    /// At most `max` live peers for `infoHash`, a uniform random sample when there are
    /// more. `family` restricts to IPv4 or IPv6 peers; `excludingSeeds` is BEP 33 `noseed`.
    public func peers(for infoHash: NodeID, max: Int, now: Double, family: AddressFamily? = nil, excludingSeeds: Bool = false,
                      using rng: inout some RandomNumberGenerator) -> [Endpoint] {
        guard max > 0, let swarm = swarms[infoHash] else { return [] }
        var live: [Endpoint] = []
        for (ip, e) in swarm where e.expires > now && (family == nil || ip.family == family) && !(excludingSeeds && e.seed) {
            live.append(Endpoint(ip: ip, port: e.port))
        }
        guard live.count > max else { return live.shuffled(using: &rng) }
        // Partial Fisher–Yates: only the first `max` positions are drawn.
        for i in 0..<max {
            live.swapAt(i, Int.random(in: i..<live.count, using: &rng))
        }
        return Array(live.prefix(max))
    }

    public func peers(for infoHash: NodeID, max: Int, now: Double, family: AddressFamily? = nil, excludingSeeds: Bool = false) -> [Endpoint] {
        var g = SystemRandom()
        return peers(for: infoHash, max: max, now: now, family: family, excludingSeeds: excludingSeeds, using: &g)
    }

    /// Live seeds and non-seeds for `infoHash` (BEP 33 scrape counts).
    public func counts(for infoHash: NodeID, now: Double) -> (seeds: Int, downloaders: Int) {
        var seeds = 0, others = 0
        for e in (swarms[infoHash] ?? [:]).values where e.expires > now {
            if e.seed { seeds += 1 } else { others += 1 }
        }
        return (seeds, others)
    }

    public var infoHashCount: Int { swarms.count }

    /// Drops expired entries and empty swarms. Call it on a timer; lookups ignore
    /// expired entries either way.
    public mutating func removeExpired(now: Double) {
        lastSweep = now
        var removed = 0
        swarms = swarms.compactMapValues { swarm in
            let kept = swarm.filter { $0.value.expires > now }
            removed += swarm.count - kept.count
            return kept.isEmpty ? nil : kept
        }
        count -= removed
    }
}
