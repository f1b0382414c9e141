import Hashing

/// One version of a name as its publisher puts it: the item's `seq` and its bencoded value.
public struct PublishedVersion: Sendable, Equatable {
    public var seq: Int64
    public var value: [UInt8]

    public init(seq: Int64, value: [UInt8]) {
        self.seq = seq
        self.value = value
    }

    /// The form kept in the state directory: `seq <n>\nvalue <hex>\n`.
    public var stateText: String { "seq \(seq)\nvalue \(HexCoding.encode(value))\n" }

    /// Reads `stateText`; nil for anything else (bounded: the caller reads at most a few KiB).
    public init?(stateText: String) {
        let lines = stateText.split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.count == 2, lines[0].hasPrefix("seq "), lines[1].hasPrefix("value "),
              let seq = Int64(lines[0].dropFirst(4)), seq >= 0,
              let value = HexCoding.decode(String(lines[1].dropFirst(6))) else { return nil }
        self.init(seq: seq, value: value)
    }
}

/// What a publisher decides about its one name (`seed DIR --key`): which `seq` a version
/// gets, when to put it again, and what to do when the DHT holds something newer. Pure:
/// what was stored, what lookups and puts found, and the time go in.
///
/// Rules: `seq` never goes down and never names two values. A version gets the highest
/// `seq` known (stored here, found in the DHT, or published in this run) when that `seq`
/// already names exactly this value (a restart re-puts the same item), else one above it.
/// A put that reached a node is repeated every `refresh` seconds (BEP 44 nodes may drop
/// an item after two hours); one that reached no node (a node that knows nobody yet, a
/// lookup that found no live node) is repeated after `retry` seconds, doubling with each
/// failure up to `maxRetry`. A put whose lookup found a newer `seq`, or the same
/// `seq` with another value (a lost state directory, or another publisher with this key)
/// is outbid: the value is given a `seq` above it at once.
public struct PublishState: Sendable {
    public var refresh: Double
    public var retry: Double
    public var maxRetry: Double = 30

    /// The version being published (nil before the first).
    public private(set) var current: PublishedVersion?
    /// The highest `seq` known and the values seen at it.
    private var top: (seq: Int64, values: [[UInt8]])?
    private var lastReached: Double?
    private var lastAttempt: Double?
    /// Puts of `current` in a row that reached no node.
    private var unreached = 0

    public init(stored: PublishedVersion?, refresh: Double = 30 * 60, retry: Double = 1) {
        self.refresh = refresh
        self.retry = retry
        if let stored { top = (stored.seq, [stored.value]) }
    }

    /// The version to publish `value` as, given the item a lookup found (nil: none found).
    /// Nil only when `seq` cannot grow any more (it is at Int64.max).
    public mutating func version(of value: [UInt8], found: PublishedVersion? = nil) -> PublishedVersion? {
        if let found { see(found) }
        let v: PublishedVersion
        if let top, top.values.allSatisfy({ $0 == value }) {
            v = PublishedVersion(seq: top.seq, value: value)
        } else {
            let (next, overflow) = (top?.seq ?? 0).addingReportingOverflow(1)
            guard !overflow else { return nil }
            v = PublishedVersion(seq: next, value: value)
        }
        top = (v.seq, [value])
        current = v
        lastReached = nil
        lastAttempt = nil
        unreached = 0
        return v
    }

    public enum PutOutcome: Sendable, Equatable {
        /// At least one node was sent the put; `first`: the first time for this version.
        case published(sentTo: Int, first: Bool)
        /// No node was reached; tried again after `retry` seconds.
        case notReached
        /// The nodes hold a newer `seq` (or the same with another value): call
        /// `version(of:)` again, which goes above it.
        case outbid(by: PublishedVersion)
    }

    /// A put of `current` ended: `sentTo` nodes were sent it; `found` is the best item its
    /// lookup saw (the item itself, or one the nodes keep instead).
    public mutating func putDone(sentTo: Int, found: PublishedVersion?, now: Double) -> PutOutcome {
        lastAttempt = now
        if let found, let current, found.seq > current.seq || (found.seq == current.seq && found.value != current.value) {
            see(found)
            return .outbid(by: found)
        }
        guard sentTo > 0 else {
            unreached += 1
            return .notReached
        }
        unreached = 0
        let first = lastReached == nil
        lastReached = now
        return .published(sentTo: sentTo, first: first)
    }

    /// When the next put of `current` is due (at once when it was never tried).
    public func nextPut(now: Double) -> Double {
        if let lastReached { return lastReached + refresh }
        if let lastAttempt { return lastAttempt + min(maxRetry, retry * Double(1 << min(max(0, unreached - 1), 10))) }
        return now
    }

    private mutating func see(_ v: PublishedVersion) {
        guard let t = top, v.seq <= t.seq else {
            top = (v.seq, [v.value])
            return
        }
        if v.seq == t.seq, !t.values.contains(v.value) { top = (t.seq, t.values + [v.value]) }
    }
}
