import Testing
@testable import TrackerProtocol

private func ok(interval: Int = 1800, peers: Int = 0) -> AnnounceResponse {
    AnnounceResponse(interval: interval, minInterval: nil, seeders: nil, leechers: nil,
                     peers: (0..<peers).map { TrackerPeer(ip: [10, 0, 0, UInt8($0 + 1)], port: 6881)! }, warning: nil, trackerID: nil)
}

@Suite struct TrackerTiersTests {
    /// No shuffling, so the order is the one given.
    func tiers(_ t: [[String]]) -> TrackerTiers { TrackerTiers(tiers: t, shuffle: { _ in }, now: 0) }

    @Test func everyTierStartsWithItsFirstTrackerAndDuplicatesAreDropped() {
        var t = tiers([["http://a", "http://b"], ["udp://c"], ["http://a"], []])
        #expect(t.trackers.count == 3)
        #expect(t.due(now: 0) == [.init(tracker: 0, url: "http://a", event: .started), .init(tracker: 2, url: "udp://c", event: .started)])
        #expect(t.due(now: 1).isEmpty)  // both in flight
    }

    @Test func anAnswerWaitsTheIntervalAndLaterAnnouncesCarryNoEvent() {
        var t = tiers([["http://a"]])
        let job = t.due(now: 0)[0]
        t.answered(job, ok(interval: 900, peers: 3), now: 1)
        #expect(t.trackers[0].started && t.trackers[0].lastPeers == 3)
        #expect(t.nextDue == 901 && t.due(now: 900).isEmpty)
        #expect(t.due(now: 901) == [.init(tracker: 0, url: "http://a", event: .none)])
    }

    @Test func aFailureMovesToTheNextOfTheTierAtOnceAndTheOneThatAnswersGoesFirst() {
        var t = tiers([["http://a", "http://b", "http://c"]])
        t.failed(t.due(now: 0)[0], error: "connection refused", now: 1)
        let second = t.due(now: 1)
        #expect(second.map(\.url) == ["http://b"])
        t.answered(second[0], ok(), now: 2)
        #expect(t.trackers[0].lastError == "connection refused")
        t.answered(t.due(now: 2000)[0], ok(), now: 2000)  // b again: it is first now
        #expect(t.trackers[1].lastAnnounce == 2000)
    }

    @Test func aTierWhoseTrackersAllFailBacksOffDoublingUpToAnHour() {
        var t = tiers([["http://a", "http://b"]])
        var now = 0.0
        var waits: [Double] = []
        for _ in 0..<16 {
            let job = t.due(now: now)[0]
            t.failed(job, error: "timeout", now: now)
            // The tier's next tracker is due at once; after the last one, the tier waits.
            let next = t.nextDue!
            if next > now {
                waits.append(next - now)
                now = next
            }
        }
        #expect(Array(waits.prefix(8)) == [30, 60, 120, 240, 480, 960, 1920, 3600])
    }

    @Test func completedGoesOutAtOnceAndStoppedOnlyToTrackersThatStarted() {
        var t = tiers([["http://a"], ["http://b"]])
        let jobs = t.due(now: 0)
        t.answered(jobs[0], ok(), now: 1)
        t.failed(jobs[1], error: "refused", now: 1)
        t.completed(now: 5)
        #expect(t.due(now: 5) == [.init(tracker: 0, url: "http://a", event: .completed)])
        #expect(t.stop() == [.init(tracker: 0, url: "http://a", event: .stopped)])
        #expect(t.due(now: 10_000).isEmpty && t.nextDue == nil)
    }
}
