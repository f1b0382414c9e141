import Hashing
import TrackerProtocol

extension EventSink {
    /// `tracker_announced`: a tracker answered (text only for the first answer of a tracker
    /// and for `completed`/`stopped`; regular re-announces are JSON only).
    func trackerAnnounced(_ job: TrackerTiers.Job, hash: [UInt8], name: String, _ r: AnnounceResponse) {
        var o: [String: JSON] = ["event": "tracker_announced", "url": .string(job.url), "hash": .string(HexCoding.encode(hash)),
                                 "site": .string(name), "announce": .string(job.event == .none ? "regular" : job.event.rawValue),
                                 "peers": JSON(r.peers.count), "interval": JSON(r.interval)]
        if let s = r.seeders { o["seeders"] = JSON(s) }
        if let l = r.leechers { o["leechers"] = JSON(l) }
        if let w = r.warning { o["warning"] = .string(w) }
        let text = job.event == .none ? nil
            : "tracker \(job.url): \(job.event.rawValue), \(r.peers.count) peer\(r.peers.count == 1 ? "" : "s") (\(name))"
        emitEvent(o, text: text)
    }

    /// `tracker_failed`: an announce got no usable answer (the next tracker of its tier is tried).
    func trackerFailed(_ job: TrackerTiers.Job, hash: [UInt8], name: String, error: String) {
        emitEvent(["event": "tracker_failed", "url": .string(job.url), "hash": .string(HexCoding.encode(hash)),
                   "site": .string(name), "error": .string(error)],
                  text: "tracker \(job.url): \(error) (\(name))")
    }

    /// `tracker_skipped`: a tracker URL that is not used, and why.
    func trackerSkipped(_ url: String, reason: String) {
        emitEvent(["event": "tracker_skipped", "url": .string(url), "reason": .string(reason)], text: nil)
    }
}
