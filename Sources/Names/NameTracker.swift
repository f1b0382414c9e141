import DHTProtocol
import Metainfo
import Signing

/// One name as a reader follows it (the gateway, `get`): the version it serves, the newer
/// one whose torrent it is checking, and when to look in the DHT again. Pure: items found,
/// torrents fetched and the time go in; decisions come out, so every rule is a unit test.
///
/// Rules: a version is used only once its torrent's metadata matched the item; `seq` never
/// goes down; an item at the same `seq` with other content, an item that is not a site
/// record, and a torrent that does not match or never appears are refused with a reason,
/// and the current version stays. A refused item is not fetched again, except one whose
/// torrent never appeared (its seeders may come later): that one is tried again once the
/// DHT still names it after `max(refresh, metadataTimeout)`, the wait doubling at each miss
/// up to `maxRetryWait`. (An item whose signature does not verify never gets here:
/// `MutableItem` cannot hold one.)
public struct NameTracker: Sendable {
    public struct Version: Sendable, Equatable {
        public let item: MutableItem
        public let record: SiteRecord
        public var seq: Int64 { item.seq }
    }

    public enum Decision: Sendable, Equatable {
        /// Nothing to do: no item, or nothing newer than what is served or checked.
        case keep
        /// A newer version: fetch the torrent `record` names, then call `metadata(_:seq:now:)`.
        case fetch(Version)
        /// The item was not used; the current version stays.
        case refused(NameRefusal)
    }

    public let key: Ed25519PublicKey
    public let salt: [UInt8]
    /// Seconds between lookups while a version is served.
    public var refresh: Double
    /// Seconds a newer version's torrent may take to appear before it is refused.
    public var metadataTimeout: Double
    /// A miss (a path the served version does not have) looks again, but not more often than this.
    public var missInterval: Double = 5
    /// The longest wait before a torrent that never appeared is looked for again.
    public var maxRetryWait: Double = 3600

    public private(set) var current: Version?
    public private(set) var pending: (version: Version, since: Double)?
    /// When a lookup last ended, and when one last found the served version current.
    public private(set) var lastLookup: Double?
    public private(set) var lastResolved: Double?
    private var refusedItem: MutableItem?
    /// The item whose torrent did not appear in time, and when it may be fetched again.
    public private(set) var stalled: (item: MutableItem, retryAt: Double, wait: Double)?

    public init(key: Ed25519PublicKey, salt: [UInt8] = [], refresh: Double = 60, metadataTimeout: Double = 60) {
        self.key = key
        self.salt = salt
        self.refresh = refresh
        self.metadataTimeout = metadataTimeout
    }

    /// Whether a lookup is due: none served yet, or `refresh` seconds since the last one.
    public func lookupDue(now: Double) -> Bool {
        guard current != nil, let last = lastLookup else { return pending == nil }
        return now - last >= refresh
    }

    /// Whether a request for something the served version lacks may look again now.
    public func missLookupAllowed(now: Double) -> Bool {
        guard let last = lastLookup else { return true }
        return now - last >= min(refresh, missInterval)
    }

    /// What a lookup found: the highest valid item the nodes hold, or nil.
    public mutating func found(_ item: MutableItem?, now: Double) -> Decision {
        lastLookup = now
        guard let item else { return current == nil && pending == nil ? .refused(.notFound) : .keep }
        guard item.publicKey == key, item.salt == salt else { return .refused(.wrongKey) }
        if item == refusedItem { return .keep }
        if let s = stalled, item == s.item, now < s.retryAt { return .keep }
        if let current {
            if item.seq < current.seq { return refuse(item, .older(seq: item.seq, current: current.seq)) }
            if item.seq == current.seq {
                if item.encodedValue == current.item.encodedValue {
                    lastResolved = now
                    return .keep
                }
                return refuse(item, .sameSeqOtherContent(seq: item.seq))
            }
        }
        if let pending {
            if item.seq < pending.version.seq { return .keep }
            if item.seq == pending.version.seq {
                return item.encodedValue == pending.version.item.encodedValue ? .keep : refuse(item, .sameSeqOtherContent(seq: item.seq))
            }
        }
        let record: SiteRecord
        do { record = try SiteRecord(value: item.value) } catch { return refuse(item, .badValue(error)) }
        let version = Version(item: item, record: record)
        pending = (version, now)
        return .fetch(version)
    }

    /// The torrent of version `seq` arrived, verified against its v2 info hash by the fetch.
    /// Returns the version now served, or why it was refused.
    public mutating func metadata(_ metainfo: Metainfo, seq: Int64, now: Double) -> Result<Version, NameRefusal> {
        guard let p = pending, p.version.seq == seq else { return .failure(.notPending(seq: seq)) }
        pending = nil
        guard p.version.record.matches(metainfo) else {
            refusedItem = p.version.item
            return .failure(.torrentMismatch(seq: seq))
        }
        current = p.version
        lastResolved = now
        if stalled?.item == p.version.item { stalled = nil }
        return .success(p.version)
    }

    /// A pending version whose torrent has not appeared within `metadataTimeout` is refused,
    /// until its retry time (see the type's rules).
    public mutating func tick(now: Double) -> NameRefusal? {
        guard let p = pending, now - p.since >= metadataTimeout else { return nil }
        pending = nil
        let wait = stalled.map { $0.item == p.version.item ? min($0.wait * 2, maxRetryWait) : nil } ?? nil
        let next = wait ?? min(max(refresh, metadataTimeout), maxRetryWait)
        stalled = (p.version.item, now + next, next)
        return .torrentNeverAppeared(seq: p.version.seq, after: now - p.since)
    }

    private mutating func refuse(_ item: MutableItem, _ reason: NameRefusal) -> Decision {
        refusedItem = item
        return .refused(reason)
    }
}

/// Why an item or the torrent it names was not used.
public enum NameRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound
    case wrongKey
    case badValue(SiteRecordError)
    case older(seq: Int64, current: Int64)
    case sameSeqOtherContent(seq: Int64)
    case torrentMismatch(seq: Int64)
    case torrentNeverAppeared(seq: Int64, after: Double)
    case notPending(seq: Int64)

    /// A short code for JSON events.
    public var code: String {
        switch self {
        case .notFound: "not_found"
        case .wrongKey: "wrong_key"
        case .badValue: "bad_value"
        case .older: "older_seq"
        case .sameSeqOtherContent: "same_seq_other_content"
        case .torrentMismatch: "torrent_mismatch"
        case .torrentNeverAppeared: "torrent_never_appeared"
        case .notPending: "not_pending"
        }
    }

    public var description: String {
        switch self {
        case .notFound: "no DHT node holds an item for this name"
        case .wrongKey: "the item is signed by another key or has another salt"
        case .badValue(let e): e.description
        case .older(let seq, let current): "the item's seq \(seq) is below the served seq \(current)"
        case .sameSeqOtherContent(let seq): "another item with the served seq \(seq) but other content"
        case .torrentMismatch(let seq): "the torrent named by seq \(seq) does not match the item (info hashes differ)"
        case .torrentNeverAppeared(let seq, let after): "the torrent named by seq \(seq) did not appear within \(Int(after)) s"
        case .notPending(let seq): "seq \(seq) is not being checked"
        }
    }
}
