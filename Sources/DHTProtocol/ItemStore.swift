/// BEP 44 items other nodes put here, for `get` replies.
///
/// Bounded: at most `limits.maxItems` items and `limits.maxBytes` bytes of values, keys,
/// signatures and salts. A new item at either cap takes the place of the item put least
/// recently (libtorrent also evicts at its cap, by popularity and distance; the least
/// recently refreshed item is the simpler rule and makes a flood of new items push out
/// only items nobody republishes). Items not put again within `limits.lifetime` are
/// dropped (libtorrent's default: 2 hours; publishers republish hourly).
///
/// One address holds at most `limits.maxItemsPerAddress` items: past that, its new item
/// takes the place of its own least recently put one, so a single host putting item after
/// item churns only its own share and cannot push out everyone else's.
///
/// The store checks `cas` and `seq` against what it holds; a `MutableItem` arrives with
/// its signature and sizes already checked by its initialiser.
public struct ItemStore: Sendable {
    public struct Limits: Sendable {
        public var maxItems = 1_000
        public var maxBytes = 1_000_000
        public var lifetime: Double = 2 * 60 * 60
        public var maxItemsPerAddress = 50
        public init() {}
    }

    public enum Outcome: Sendable, Equatable {
        case added
        /// The same item again: its lifetime restarts.
        case refreshed
        /// A mutable item with a higher `seq` took the stored one's place.
        case replaced
        /// Added after evicting this many least recently put items.
        case addedEvicting(Int)
    }

    private struct Entry: Sendable {
        var item: DHTItem
        var lastPut: Double
        /// Who put it first (nil: this node). A refresh by someone else keeps it.
        var source: IPAddress?
    }

    public let limits: Limits
    private var items: [NodeID: Entry] = [:]
    private var perAddress: [IPAddress: Int] = [:]
    public private(set) var bytes = 0

    public init(limits: Limits = Limits()) {
        precondition(limits.maxItems > 0 && limits.maxBytes >= DHTItem.largestSize && limits.lifetime > 0 && limits.maxItemsPerAddress > 0)
        self.limits = limits
    }

    public var count: Int { items.count }

    /// The live item under `target`, if any.
    public func item(_ target: NodeID, now: Double) -> DHTItem? {
        guard let e = items[target], now - e.lastPut < limits.lifetime else { return nil }
        return e.item
    }

    /// Stores an immutable item put by `source` (nil: this node).
    public mutating func put(_ item: ImmutableItem, from source: IPAddress? = nil, now: Double) -> Outcome {
        let target = item.target
        if items[target] != nil, now - items[target]!.lastPut < limits.lifetime {
            items[target]!.lastPut = now
            return .refreshed
        }
        return insert(.immutable(item), at: target, from: source, now: now)
    }

    /// Stores a mutable item under its target: a first one, the same one again
    /// (refreshed), or a higher `seq`. `cas`, when given, must equal the stored `seq`
    /// (BEP 44 301); a lower `seq`, or an equal one with another value, is refused (302).
    /// Nothing changes on a refusal.
    public mutating func put(_ item: MutableItem, cas: Int64? = nil, from source: IPAddress? = nil, now: Double) throws(DHTItemError) -> Outcome {
        let target = item.target
        guard let old = self.item(target, now: now), case .mutable(let stored) = old else {
            // Nothing live here (an immutable item cannot share a target with a signed one:
            // its target would be a SHA-1 preimage of k ‖ salt).
            return insert(.mutable(item), at: target, from: source, now: now)
        }
        if let cas, cas != stored.seq { throw .casMismatch(expected: cas, stored: stored.seq) }
        if item.seq == stored.seq, item.encodedValue == stored.encodedValue {
            items[target]!.lastPut = now
            return .refreshed
        }
        guard item.seq > stored.seq else { throw .sequenceNotNewer(seq: item.seq, stored: stored.seq) }
        remove(target)
        _ = insert(.mutable(item), at: target, from: source, now: now)
        return .replaced
    }

    /// Drops items past their lifetime. Call it on a timer; `item(_:now:)` ignores them
    /// either way, and a put at the cap sweeps before it evicts.
    public mutating func removeExpired(now: Double) {
        for (target, e) in items where now - e.lastPut >= limits.lifetime { remove(target) }
    }

    private mutating func insert(_ item: DHTItem, at target: NodeID, from source: IPAddress?, now: Double) -> Outcome {
        remove(target)
        let size = item.size
        var evicted = 0
        if let source, perAddress[source, default: 0] >= limits.maxItemsPerAddress,
           let own = items.filter({ $0.value.source == source }).min(by: { $0.value.lastPut < $1.value.lastPut }) {
            remove(own.key)
            evicted += 1
        }
        if items.count >= limits.maxItems || bytes + size > limits.maxBytes {
            removeExpired(now: now)
            while items.count >= limits.maxItems || bytes + size > limits.maxBytes,
                  let oldest = items.min(by: { $0.value.lastPut < $1.value.lastPut }) {
                remove(oldest.key)
                evicted += 1
            }
        }
        items[target] = Entry(item: item, lastPut: now, source: source)
        if let source { perAddress[source, default: 0] += 1 }
        bytes += size
        return evicted == 0 ? .added : .addedEvicting(evicted)
    }

    private mutating func remove(_ target: NodeID) {
        guard let e = items.removeValue(forKey: target) else { return }
        bytes -= e.item.size
        if let source = e.source {
            perAddress[source]! -= 1
            if perAddress[source] == 0 { perAddress[source] = nil }
        }
    }
}

extension DHTItem {
    /// The most one item is charged: so a store of at least this many bytes always has room.
    static let largestSize = DHTItemLimits.maxValueSize + DHTItemLimits.maxSaltSize + 32 + 64

    /// Bytes charged against `maxBytes` (the value, and a mutable item's key, signature
    /// and salt).
    var size: Int {
        switch self {
        case .immutable(let i): i.encodedValue.count
        case .mutable(let m): m.encodedValue.count + m.salt.count + 32 + 64
        }
    }
}
