/// BEP 5 routing table: buckets of K nodes over the 160-bit keyspace, where only the
/// bucket holding our own id splits. Bucket `i` (all but the last) holds ids sharing
/// exactly `i` leading bits with ours; the last bucket holds all that share more.
///
/// Pure state: every call takes `now` (seconds, any epoch) and returns what the caller
/// should do (ping a questionable node, refresh a bucket); nothing here sends or waits.
public struct RoutingTable: Sendable {
    public struct Configuration: Sendable {
        /// K: nodes per bucket.
        public var bucketSize = 8
        /// Hard cap on nodes in the table (replacement caches are bounded separately).
        public var maxNodes = 512
        /// Candidates kept per bucket for when a node goes bad.
        public var replacementsPerBucket = 8
        /// A reply (or a query after a reply) keeps a node good this long.
        public var goodInterval: Double = 15 * 60
        /// Failed queries in a row that make a node bad.
        public var maxFailures = 2
        /// A bucket unchanged this long is due a refresh lookup.
        public var refreshInterval: Double = 15 * 60
        public init() {}
    }

    public enum NodeState: Sendable, Hashable {
        case good, questionable, bad
    }

    /// How we learned of a node.
    public enum Contact: Sendable, Hashable {
        /// It answered one of our queries.
        case replied
        /// It sent us a query. Read-only nodes (BEP 43 `ro`) must not be reported at all.
        case queriedUs
        /// Known only second-hand (a saved table); questionable until it replies.
        case unverified
    }

    public enum Outcome: Sendable, Equatable {
        case added
        /// Already present; its timestamps were updated.
        case updated
        /// Took the place of a bad node.
        case replaced(bad: NodeInfo)
        /// The bucket is full: ping this questionable node; if it fails `maxFailures`
        /// times, the newcomer (kept as a replacement) takes its place.
        case pingFirst(NodeInfo)
        /// The bucket is full of good nodes, or the table is at its cap; the newcomer is
        /// kept as a replacement.
        case cached
        case rejected(Rejection)
    }

    public enum Rejection: Sendable, Equatable {
        case ownID
        /// An id already in the table, not bad, seen from another endpoint (a spoofer, or
        /// a node that moved; it comes back once the old entry goes bad).
        case idAtOtherEndpoint
        /// The endpoint already belongs to another id in the table that is not bad.
        case endpointHasOtherID
    }

    public struct Entry: Sendable, Equatable {
        public internal(set) var node: NodeInfo
        public internal(set) var lastReplied: Double?
        public internal(set) var lastQueried: Double?
        public internal(set) var lastSeen: Double?
        /// Failed queries in a row; a reply resets it.
        public internal(set) var failures = 0

        init(_ node: NodeInfo) { self.node = node }

        /// Good: replied within `goodInterval`, or replied once and queried us within it.
        /// Bad: `maxFailures` failures in a row. Otherwise questionable.
        public func state(now: Double, _ c: Configuration) -> NodeState {
            if failures >= c.maxFailures { return .bad }
            guard let r = lastReplied else { return .questionable }
            if now - r < c.goodInterval { return .good }
            if let q = lastQueried, now - q < c.goodInterval { return .good }
            return .questionable
        }

        mutating func record(_ contact: Contact, now: Double) {
            switch contact {
            case .replied:
                lastReplied = now
                lastSeen = now
                failures = 0
            case .queriedUs:
                lastQueried = now
                lastSeen = now
            case .unverified:
                break
            }
        }
    }

    private struct Bucket: Sendable {
        var entries: [Entry] = []
        var replacements: [Entry] = []
        var lastChanged: Double
    }

    public let ownID: NodeID
    public let configuration: Configuration
    private var buckets: [Bucket]
    /// Endpoint → id of every entry (not replacements), to keep one id per endpoint.
    private var endpoints: [Endpoint: NodeID] = [:]
    public private(set) var count = 0

    public init(ownID: NodeID, now: Double, configuration: Configuration = Configuration()) {
        precondition(configuration.bucketSize > 0 && configuration.maxNodes > 0 && configuration.maxFailures > 0)
        self.ownID = ownID
        self.configuration = configuration
        self.buckets = [Bucket(lastChanged: now)]
    }

    public var bucketCount: Int { buckets.count }

    /// The keyspace range of each bucket, in order.
    public var bucketPrefixes: [NodeIDPrefix] { buckets.indices.map(prefix(ofBucket:)) }

    public var entries: [Entry] { buckets.flatMap(\.entries) }

    public func entry(for id: NodeID) -> Entry? {
        buckets[bucketIndex(for: id)].entries.first { $0.node.id == id }
    }

    public func state(of id: NodeID, now: Double) -> NodeState? {
        entry(for: id)?.state(now: now, configuration)
    }

    /// Records that we heard from `node` and adds it if there is room.
    public mutating func heard(from node: NodeInfo, _ contact: Contact, now: Double) -> Outcome {
        guard node.id != ownID else { return .rejected(.ownID) }
        let b = bucketIndex(for: node.id)
        if let i = buckets[b].entries.firstIndex(where: { $0.node.id == node.id }) {
            var e = buckets[b].entries[i]
            if e.node.endpoint != node.endpoint {
                guard e.state(now: now, configuration) == .bad else { return .rejected(.idAtOtherEndpoint) }
                if let other = endpoints[node.endpoint] {
                    guard isBad(other, now: now) else { return .rejected(.endpointHasOtherID) }
                    remove(other)
                    return heard(from: node, contact, now: now)
                }
                endpoints[e.node.endpoint] = nil
                endpoints[node.endpoint] = node.id
                e = Entry(node)
            }
            e.record(contact, now: now)
            buckets[b].entries[i] = e
            if contact == .replied { buckets[b].lastChanged = now }
            return .updated
        }
        if let other = endpoints[node.endpoint] {
            guard isBad(other, now: now) else { return .rejected(.endpointHasOtherID) }
            remove(other)
        }
        var fresh = Entry(node)
        fresh.record(contact, now: now)
        return insert(fresh, now: now)
    }

    private mutating func insert(_ fresh: Entry, now: Double) -> Outcome {
        let c = configuration
        while true {
            let b = bucketIndex(for: fresh.node.id)
            if buckets[b].entries.count < c.bucketSize && count >= c.maxNodes, let bad = anyBadNode(now: now) {
                // At the cap, a bad node anywhere gives up its place.
                remove(bad)
            }
            if buckets[b].entries.count < c.bucketSize && count < c.maxNodes {
                buckets[b].entries.append(fresh)
                buckets[b].replacements.removeAll { $0.node.id == fresh.node.id }
                buckets[b].lastChanged = now
                endpoints[fresh.node.endpoint] = fresh.node.id
                count += 1
                return .added
            }
            if let i = buckets[b].entries.firstIndex(where: { $0.state(now: now, c) == .bad }) {
                let old = buckets[b].entries[i].node
                replace(bucket: b, index: i, with: fresh, now: now)
                return .replaced(bad: old)
            }
            let isLast = b == buckets.count - 1
            if isLast && buckets[b].entries.count >= c.bucketSize && count < c.maxNodes && buckets.count < NodeID.bitCount {
                split()
                continue
            }
            cacheReplacement(fresh, bucket: b)
            let questionable = buckets[b].entries.filter { $0.state(now: now, c) == .questionable }
            if let q = questionable.min(by: { ($0.lastSeen ?? -.infinity) < ($1.lastSeen ?? -.infinity) }) {
                return .pingFirst(q.node)
            }
            return .cached
        }
    }

    /// One of our queries to `id` went unanswered. When that makes the node bad and a
    /// replacement is waiting, the replacement takes its place and is returned.
    @discardableResult
    public mutating func failed(_ id: NodeID, now: Double) -> NodeInfo? {
        let b = bucketIndex(for: id)
        guard let i = buckets[b].entries.firstIndex(where: { $0.node.id == id }) else {
            buckets[b].replacements.removeAll { $0.node.id == id }
            return nil
        }
        buckets[b].entries[i].failures += 1
        guard buckets[b].entries[i].state(now: now, configuration) == .bad else { return nil }
        // Prefer the candidate that replied most recently; one whose endpoint is taken
        // meanwhile cannot come in.
        let usable = buckets[b].replacements.indices.filter { endpoints[buckets[b].replacements[$0].node.endpoint] == nil }
        guard let r = usable.max(by: { (buckets[b].replacements[$0].lastReplied ?? -.infinity, $0)
                                         < (buckets[b].replacements[$1].lastReplied ?? -.infinity, $1) }) else { return nil }
        let candidate = buckets[b].replacements.remove(at: r)
        replace(bucket: b, index: i, with: candidate, now: now)
        return candidate.node
    }

    public mutating func remove(_ id: NodeID) {
        let b = bucketIndex(for: id)
        guard let i = buckets[b].entries.firstIndex(where: { $0.node.id == id }) else { return }
        let e = buckets[b].entries.remove(at: i)
        endpoints[e.node.endpoint] = nil
        count -= 1
    }

    /// Up to `count` nodes nearest `target` by XOR distance, nearest first. Bad nodes are
    /// never returned; `goodOnly` also leaves out questionable ones (BEP 5 answers
    /// find_node and get_peers with good nodes).
    public func closest(to target: NodeID, count: Int, now: Double, goodOnly: Bool = false) -> [NodeInfo] {
        var candidates: [NodeInfo] = []
        for bucket in buckets {
            for e in bucket.entries {
                let s = e.state(now: now, configuration)
                if s == .good || (s == .questionable && !goodOnly) { candidates.append(e.node) }
            }
        }
        candidates.sort { ($0.id ^ target) < ($1.id ^ target) }
        return Array(candidates.prefix(count))
    }

    /// A random lookup target inside every bucket that has not changed for
    /// `refreshInterval`; those buckets count as refreshed from `now`, so each target is
    /// handed out once per interval.
    public mutating func dueRefreshes(now: Double, using rng: inout some RandomNumberGenerator) -> [NodeID] {
        var targets: [NodeID] = []
        for b in buckets.indices where now - buckets[b].lastChanged >= configuration.refreshInterval {
            targets.append(prefix(ofBucket: b).randomID(using: &rng))
            buckets[b].lastChanged = now
        }
        return targets
    }

    public mutating func dueRefreshes(now: Double) -> [NodeID] {
        var g = SystemRandom()
        return dueRefreshes(now: now, using: &g)
    }

    // MARK: - Internals

    private func bucketIndex(for id: NodeID) -> Int {
        min(ownID.commonPrefixLength(with: id), buckets.count - 1)
    }

    private func prefix(ofBucket b: Int) -> NodeIDPrefix {
        b == buckets.count - 1 ? NodeIDPrefix(ownID, length: b) : NodeIDPrefix(ownID.flippingBit(b), length: b + 1)
    }

    private func anyBadNode(now: Double) -> NodeID? {
        for bucket in buckets {
            if let e = bucket.entries.first(where: { $0.state(now: now, configuration) == .bad }) { return e.node.id }
        }
        return nil
    }

    private func isBad(_ id: NodeID, now: Double) -> Bool {
        state(of: id, now: now) == .bad
    }

    private mutating func replace(bucket b: Int, index i: Int, with new: Entry, now: Double) {
        endpoints[buckets[b].entries[i].node.endpoint] = nil
        endpoints[new.node.endpoint] = new.node.id
        buckets[b].entries[i] = new
        buckets[b].replacements.removeAll { $0.node.id == new.node.id }
        buckets[b].lastChanged = now
    }

    private mutating func cacheReplacement(_ e: Entry, bucket b: Int) {
        let limit = configuration.replacementsPerBucket
        guard limit > 0 else { return }
        buckets[b].replacements.removeAll { $0.node.id == e.node.id || $0.node.endpoint == e.node.endpoint }
        if buckets[b].replacements.count >= limit { buckets[b].replacements.removeFirst() }
        buckets[b].replacements.append(e)
    }

    /// Splits the last bucket: ids sharing exactly `last` bits with ours stay, the rest
    /// move to a new last bucket.
    private mutating func split() {
        let last = buckets.count - 1
        let old = buckets[last]
        var near = Bucket(lastChanged: old.lastChanged), far = Bucket(lastChanged: old.lastChanged)
        for e in old.entries {
            if ownID.commonPrefixLength(with: e.node.id) == last { far.entries.append(e) } else { near.entries.append(e) }
        }
        for e in old.replacements {
            if ownID.commonPrefixLength(with: e.node.id) == last { far.replacements.append(e) } else { near.replacements.append(e) }
        }
        buckets[last] = far
        buckets.append(near)
    }
}
