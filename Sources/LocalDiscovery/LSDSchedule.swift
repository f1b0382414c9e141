/// When local discovery announces what (BEP 14), and which announces it takes in. Pure:
/// `now` in, packets and peers out.
///
/// Sending: every torrent is announced when it is added and then every 5 minutes, in as
/// few packets as fit (several `Infohash` lines each, under 1400 bytes), but never more than
/// one round of packets a minute (BEP 14's limit against multicast storms): a torrent added
/// within a minute of the last round waits for the next one.
///
/// Receiving: an announce is used only for torrents this node wants, only from addresses
/// that have not sent more than `maxPerSourcePerMinute` announces in the last minute, and
/// never one with this node's own cookie.
public struct LSDSchedule: Sendable {
    public static let interval: Double = 5 * 60
    public static let minimumGap: Double = 60
    public static let maxPerSourcePerMinute = 10
    public static let maxSources = 1_024

    public let cookie: String
    private var torrents: [[UInt8]: Double] = [:]  // hash → next announce
    private var wanted: Set<[UInt8]> = []
    private var lastRound: Double?
    private var heard: [String: (since: Double, count: Int)] = [:]

    public init(cookie: String) { self.cookie = cookie }

    /// Starts announcing `hashes` (already announced ones keep their schedule).
    public mutating func announce(_ hashes: [[UInt8]], now: Double) {
        for h in hashes where h.count == 20 && torrents[h] == nil { torrents[h] = now }
    }

    /// Starts taking announces of `hashes` in.
    public mutating func want(_ hashes: [[UInt8]]) {
        for h in hashes where h.count == 20 { wanted.insert(h) }
    }

    /// Stops announcing `hashes` (announces of them are still taken in if wanted).
    public mutating func stopAnnouncing(_ hashes: [[UInt8]]) {
        for h in hashes { torrents[h] = nil }
    }

    /// The hashes to announce now, in batches of one packet each (the same batches go to
    /// every group and interface), or none.
    public mutating func due(now: Double) -> [[[UInt8]]] {
        if let last = lastRound, now - last < Self.minimumGap { return [] }
        let hashes = torrents.filter { $0.value <= now }.keys.sorted { $0.lexicographicallyPrecedes($1) }
        guard !hashes.isEmpty else { return [] }
        lastRound = now
        for h in hashes { torrents[h] = now + Self.interval }
        let per = LSDMessage.hashesPerPacket(cookieLength: cookie.utf8.count)
        return stride(from: 0, to: hashes.count, by: per).map { Array(hashes[$0..<min($0 + per, hashes.count)]) }
    }

    /// When `due` next has something (nil: nothing to announce).
    public var nextDue: Double? {
        guard let earliest = torrents.values.min() else { return nil }
        return max(earliest, (lastRound ?? -Self.minimumGap) + Self.minimumGap)
    }

    /// An announce from `source` (its address, without port): the wanted hashes it names,
    /// or none (its own, over the rate, or nothing wanted).
    public mutating func received(_ m: LSDMessage, from source: String, now: Double) -> [[UInt8]] {
        guard m.cookie != cookie else { return [] }
        var h = heard[source] ?? (now, 0)
        if now - h.since >= 60 { h = (now, 0) }
        h.count += 1
        if heard[source] == nil, heard.count >= Self.maxSources {
            heard = heard.filter { now - $0.value.since < 60 }
            guard heard.count < Self.maxSources else { return [] }
        }
        heard[source] = h
        guard h.count <= Self.maxPerSourcePerMinute else { return [] }
        return m.hashes.filter { wanted.contains($0) }
    }
}
