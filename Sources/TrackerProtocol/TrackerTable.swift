/// The peers a tracker knows, per info hash, and its answer to each announce. Pure: the
/// announce, the address it came from, `now` and a random source go in; the answer comes
/// out. Which hashes may be announced is the caller's decision (a gateway: the sites it holds).
///
/// Rules:
/// - a peer is its (address, port): the address is the connection's, the port the announced one;
/// - an entry lives `2 × interval` after its last announce; `stopped` removes it at once;
/// - per torrent at most `peersPerTorrent` entries and at most `peersPerAddress` from one
///   address (an IPv6 /64 counts as one address): when full, the oldest entry (by last
///   announce) of that address, else of that torrent, makes room;
/// - at most `totalPeers` entries in all: when full, a new peer replaces the oldest entry of
///   its own torrent, or is answered without being kept if its torrent has none;
/// - an answer holds at most `numwant` peers (capped at `TrackerServerLimits.maxNumWant`),
///   never the asker itself, and to a seeder no seeders; `extra` (the tracker's host as a
///   peer) comes first, the rest is a uniform random choice of the others.
public struct TrackerTable: Sendable {
    public struct Limits: Sendable {
        /// Seconds between a client's regular announces, and the least it may wait.
        public var interval = 1_800
        public var minInterval = 60
        public var peersPerTorrent = 500
        public var peersPerAddress = 16
        public var totalPeers = 20_000
        public init() {}
    }

    /// A peer the caller adds to an answer without keeping it (the tracker's own host).
    public struct Extra: Sendable, Equatable {
        public var peer: TrackerPeer
        public var seeder: Bool
        public init(peer: TrackerPeer, seeder: Bool) {
            self.peer = peer
            self.seeder = seeder
        }
    }

    struct Entry: Sendable {
        var seeder: Bool
        var lastSeen: Double
    }

    public let limits: Limits
    private var swarms: [[UInt8]: [TrackerPeer: Entry]] = [:]
    public private(set) var count = 0
    private var lastSweep: Double?

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// How long an entry lives after its last announce.
    public var lifetime: Double { Double(2 * limits.interval) }

    /// Peers kept for `infoHash` (seeders, leechers).
    public func counts(_ infoHash: [UInt8]) -> (seeders: Int, leechers: Int) {
        let s = swarms[infoHash]?.values.filter(\.seeder).count ?? 0
        return (s, (swarms[infoHash]?.count ?? 0) - s)
    }

    /// Answers `announce`, which came from `address` (4 or 16 bytes), and remembers the peer.
    public mutating func announce(_ announce: Announce, from address: [UInt8], now: Double, extra: Extra? = nil,
                                  using rng: inout some RandomNumberGenerator) -> AnnounceResponse {
        sweep(now: now)
        let hash = announce.infoHash
        expire(hash, now: now)
        let asker = TrackerPeer(ip: address, port: announce.port)
        let seeder = announce.left == 0
        if let asker {
            if announce.event == .stopped {
                remove(asker, from: hash)
            } else {
                keep(asker, seeder: seeder, in: hash, now: now)
            }
        }
        let swarm = swarms[hash] ?? [:]
        var seeders = 0
        var others: [TrackerPeer] = []
        for (peer, entry) in swarm {
            if entry.seeder { seeders += 1 }
            if peer != asker, peer != extra?.peer, !(seeder && entry.seeder) { others.append(peer) }
        }
        var leechers = swarm.count - seeders
        var first: [TrackerPeer] = []
        if let extra {
            // Counted once, whether or not the host also announced itself.
            if swarm[extra.peer] == nil {
                if extra.seeder { seeders += 1 } else { leechers += 1 }
            }
            if extra.peer != asker, !(seeder && extra.seeder) { first.append(extra.peer) }
        }
        let wanted = announce.event == .stopped ? 0 : max(0, min(announce.numWant, TrackerServerLimits.maxNumWant))
        // Sorted first, so that the same random source makes the same choice.
        others.sort(by: Self.ordered)
        let chosen = Array(first.prefix(wanted)) + Self.sample(&others, max(0, wanted - first.count), using: &rng)
        return AnnounceResponse(interval: limits.interval, minInterval: limits.minInterval, seeders: seeders, leechers: leechers,
                                peers: chosen, warning: nil, trackerID: nil)
    }

    /// Forgets every entry older than `lifetime` (over the whole table at most once a minute;
    /// the caller need not call it, `announce` does, and always for the hash announced).
    public mutating func sweep(now: Double, force: Bool = false) {
        if !force, let last = lastSweep, now - last < 60 { return }
        lastSweep = now
        let oldest = now - lifetime
        for (hash, swarm) in swarms {
            let kept = swarm.filter { $0.value.lastSeen > oldest }
            count -= swarm.count - kept.count
            swarms[hash] = kept.isEmpty ? nil : kept
        }
    }

    /// Forgets the entries of `hash` older than `lifetime` (an answer never names them).
    private mutating func expire(_ hash: [UInt8], now: Double) {
        let oldest = now - lifetime
        guard swarms[hash]?.values.contains(where: { $0.lastSeen <= oldest }) == true, let swarm = swarms.removeValue(forKey: hash) else { return }
        let kept = swarm.filter { $0.value.lastSeen > oldest }
        count -= swarm.count - kept.count
        if !kept.isEmpty { swarms[hash] = kept }
    }

    private mutating func keep(_ peer: TrackerPeer, seeder: Bool, in hash: [UInt8], now: Double) {
        // Taken out while it changes, so it is not copied.
        var swarm = swarms.removeValue(forKey: hash) ?? [:]
        defer { swarms[hash] = swarm.isEmpty ? nil : swarm }
        if swarm[peer] != nil {
            swarm[peer] = Entry(seeder: seeder, lastSeen: now)
            return
        }
        let group = Self.addressGroup(peer.ip)
        let sameAddress = swarm.filter { Self.addressGroup($0.key.ip) == group }
        if sameAddress.count >= limits.peersPerAddress, let old = Self.oldest(sameAddress) {
            swarm[old] = nil
            count -= 1
        } else if swarm.count >= limits.peersPerTorrent || count >= limits.totalPeers {
            guard let old = Self.oldest(swarm) else { return }
            swarm[old] = nil
            count -= 1
        }
        swarm[peer] = Entry(seeder: seeder, lastSeen: now)
        count += 1
    }

    private mutating func remove(_ peer: TrackerPeer, from hash: [UInt8]) {
        guard swarms[hash]?.removeValue(forKey: peer) != nil else { return }
        count -= 1
        if swarms[hash]?.isEmpty == true { swarms[hash] = nil }
    }

    /// The least recently announced entry (ties broken by address, so the choice is stable).
    private static func oldest(_ entries: [TrackerPeer: Entry]) -> TrackerPeer? {
        entries.min { a, b in
            a.value.lastSeen != b.value.lastSeen ? a.value.lastSeen < b.value.lastSeen : ordered(a.key, b.key)
        }?.key
    }

    private static func ordered(_ a: TrackerPeer, _ b: TrackerPeer) -> Bool {
        a.ip != b.ip ? a.ip.lexicographicallyPrecedes(b.ip) : a.port < b.port
    }

    /// IPv4: the address; IPv6: its /64 (one host or home network holds a whole /64).
    static func addressGroup(_ ip: [UInt8]) -> ArraySlice<UInt8> { ip.count == 16 ? ip[0..<8] : ip[...] }

    /// `k` of `items`, each subset equally likely (a partial Fisher–Yates shuffle).
    static func sample(_ items: inout [TrackerPeer], _ k: Int, using rng: inout some RandomNumberGenerator) -> [TrackerPeer] {
        let k = min(k, items.count)
        for i in 0..<k {
            items.swapAt(i, Int.random(in: i..<items.count, using: &rng))
        }
        return Array(items.prefix(k))
    }
}
