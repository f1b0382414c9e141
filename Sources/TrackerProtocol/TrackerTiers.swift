/// The trackers of one torrent and when to announce to each (BEP 12). Pure: results and
/// `now` go in; which tracker to announce to, and with which event, comes out.
///
/// Every tier is used (as qBittorrent and libtorrent's `announce_to_all_tiers` do: tiers
/// are usually unrelated trackers), one tracker of a tier at a time. A tier's trackers are
/// shuffled once; the one that answers moves to the front of its tier (BEP 12). A tracker
/// that fails hands over to the next of its tier at once; when every tracker of the tier
/// failed in turn, the tier waits 30 s, then 60, 120, … up to an hour, before trying again.
/// After an answer the tier waits the interval the tracker asked for.
public struct TrackerTiers: Sendable {
    public struct Status: Sendable, Equatable {
        public var url: String
        public var tier: Int
        /// Whether it announced `started` and has not yet said `stopped`.
        public var started = false
        public var lastError: String?
        public var lastPeers: Int?
        public var lastAnnounce: Double?
        public var interval: Int?
    }

    public struct Job: Sendable, Equatable {
        public var tracker: Int
        public var url: String
        public var event: Announce.Event
    }

    public private(set) var trackers: [Status] = []
    /// Per tier: indices into `trackers`, in the order they are tried.
    private var tiers: [[Int]] = []
    private var current: [Int] = []
    private var next: [Double] = []
    private var failedInRow: [Int] = []
    private var inFlight: Set<Int> = []
    private var completedToSend: Set<Int> = []
    private var stopping = false

    public static let firstBackoff: Double = 30
    public static let maxBackoff: Double = 3_600

    /// `tiers`: the torrent's announce-list (or its one `announce`), magnet `tr=` and
    /// `--tracker` URLs, each inner list one tier; duplicates are dropped.
    public init(tiers input: [[String]], shuffle: (inout [Int]) -> Void = { $0.shuffle() }, now: Double) {
        var seen = Set<String>()
        for list in input {
            var tier: [Int] = []
            for url in list where seen.insert(url).inserted {
                tier.append(trackers.count)
                trackers.append(Status(url: url, tier: tiers.count))
            }
            guard !tier.isEmpty else { continue }
            shuffle(&tier)
            tiers.append(tier)
        }
        current = Array(repeating: 0, count: tiers.count)
        next = Array(repeating: now, count: tiers.count)
        failedInRow = Array(repeating: 0, count: tiers.count)
    }

    /// Announces due at `now`; each is marked in flight until `answered` or `failed`.
    public mutating func due(now: Double) -> [Job] {
        guard !stopping else { return [] }
        var jobs: [Job] = []
        for t in tiers.indices where next[t] <= now {
            let i = tiers[t][current[t]]
            guard !inFlight.contains(i) else { continue }
            inFlight.insert(i)
            let event: Announce.Event = !trackers[i].started ? .started : completedToSend.contains(i) ? .completed : .none
            jobs.append(Job(tracker: i, url: trackers[i].url, event: event))
        }
        return jobs
    }

    /// The earliest time something is due (nil: nothing will be).
    public var nextDue: Double? { stopping ? nil : tiers.indices.filter { !inFlight.contains(tiers[$0][current[$0]]) }.map { next[$0] }.min() }

    public mutating func answered(_ job: Job, _ response: AnnounceResponse, now: Double) {
        inFlight.remove(job.tracker)
        let t = trackers[job.tracker].tier
        trackers[job.tracker].lastError = nil
        trackers[job.tracker].lastPeers = response.peers.count
        trackers[job.tracker].lastAnnounce = now
        trackers[job.tracker].interval = response.interval
        if job.event == .started { trackers[job.tracker].started = true }
        if job.event == .completed { completedToSend.remove(job.tracker) }
        if job.event == .stopped { trackers[job.tracker].started = false }
        // BEP 12: the tracker that answered goes to the front of its tier.
        if let at = tiers[t].firstIndex(of: job.tracker), at != 0 {
            tiers[t].remove(at: at)
            tiers[t].insert(job.tracker, at: 0)
        }
        current[t] = 0
        failedInRow[t] = 0
        next[t] = now + Double(max(response.interval, response.minInterval ?? 0))
    }

    public mutating func failed(_ job: Job, error: String, now: Double) {
        inFlight.remove(job.tracker)
        trackers[job.tracker].lastError = error
        trackers[job.tracker].lastAnnounce = now
        guard job.event != .stopped else { return }
        let t = trackers[job.tracker].tier
        failedInRow[t] += 1
        current[t] = (current[t] + 1) % tiers[t].count
        if failedInRow[t] % tiers[t].count == 0 {
            let rounds = failedInRow[t] / tiers[t].count
            next[t] = now + min(Self.maxBackoff, Self.firstBackoff * Double(1 << min(rounds - 1, 16)))
        } else {
            next[t] = now
        }
    }

    /// The download finished: each tracker told `started` gets `completed` on its next announce, now.
    public mutating func completed(now: Double) {
        for i in trackers.indices where trackers[i].started { completedToSend.insert(i) }
        for t in tiers.indices where trackers[tiers[t][current[t]]].started { next[t] = now }
    }

    /// Shutting down: `stopped` to every tracker that was told `started`; nothing after.
    public mutating func stop() -> [Job] {
        stopping = true
        return trackers.indices.filter { trackers[$0].started }.map { Job(tracker: $0, url: trackers[$0].url, event: .stopped) }
    }
}
