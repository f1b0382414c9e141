import Testing
@testable import Names

private let a: [UInt8] = Array("d2:ih20:aaaaaaaaaaaaaaaaaaaa2:v232:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaae".utf8)
private let b: [UInt8] = Array("d2:ih20:bbbbbbbbbbbbbbbbbbbb2:v232:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbe".utf8)
private let c: [UInt8] = Array("d2:ih20:cccccccccccccccccccc2:v232:cccccccccccccccccccccccccccccccce".utf8)

@Suite struct PublishSeqTests {
    @Test func aFirstPublicationIsSeqOne() {
        var s = PublishState(stored: nil)
        #expect(s.version(of: a) == PublishedVersion(seq: 1, value: a))
    }

    @Test func theStoredSeqIsPutAgainWhenItNamesThisValue() {
        var s = PublishState(stored: .init(seq: 3, value: a))
        #expect(s.version(of: a)?.seq == 3)
    }

    @Test func anotherValueGoesAboveTheStoredSeq() {
        var s = PublishState(stored: .init(seq: 3, value: a))
        #expect(s.version(of: b)?.seq == 4)
    }

    @Test func aLostStateDirectoryGoesAboveWhatTheDHTHolds() {
        var s = PublishState(stored: nil)
        #expect(s.version(of: a, found: .init(seq: 7, value: b))?.seq == 8)
    }

    @Test func theDHTsItemIsPutAgainWhenItNamesThisValue() {
        var s = PublishState(stored: nil)
        #expect(s.version(of: a, found: .init(seq: 7, value: a))?.seq == 7)
        var t = PublishState(stored: .init(seq: 2, value: b))
        #expect(t.version(of: a, found: .init(seq: 7, value: a))?.seq == 7)
    }

    @Test func theHigherOfStoredAndFoundDecides() {
        var s = PublishState(stored: .init(seq: 9, value: a))
        #expect(s.version(of: a, found: .init(seq: 7, value: b))?.seq == 9)
        var t = PublishState(stored: .init(seq: 9, value: a))
        #expect(t.version(of: c, found: .init(seq: 7, value: b))?.seq == 10)
    }

    @Test func oneSeqNamingTwoValuesIsNeverReused() {
        // Stored and found disagree at seq 5: neither may be put at 5 again.
        var s = PublishState(stored: .init(seq: 5, value: a))
        #expect(s.version(of: a, found: .init(seq: 5, value: b))?.seq == 6)
    }

    @Test func eachNewValueGoesUp() {
        var s = PublishState(stored: nil)
        #expect(s.version(of: a)?.seq == 1)
        #expect(s.version(of: b)?.seq == 2)
        #expect(s.version(of: a)?.seq == 3)
        #expect(s.version(of: a)?.seq == 3)
    }

    @Test func seqStopsAtInt64Max() {
        var s = PublishState(stored: .init(seq: .max, value: a))
        #expect(s.version(of: a)?.seq == .max)
        #expect(s.version(of: b) == nil)
    }

    @Test func theStateTextRoundTripsAndAnythingElseIsRefused() {
        let v = PublishedVersion(seq: 42, value: [0, 1, 0xff])
        #expect(v.stateText == "seq 42\nvalue 0001ff\n")
        #expect(PublishedVersion(stateText: v.stateText) == v)
        for bad in ["", "seq 42\n", "seq -1\nvalue 00\n", "seq x\nvalue 00\n", "seq 1\nvalue 0g\n", "seq 1\nvalue 00\nmore\n",
                    "seq 99999999999999999999\nvalue 00\n"] {
            #expect(PublishedVersion(stateText: bad) == nil, "\(bad)")
        }
    }
}

@Suite struct PublishScheduleTests {
    @Test func aNewVersionIsPutAtOnce() {
        var s = PublishState(stored: nil)
        _ = s.version(of: a)
        #expect(s.nextPut(now: 100) == 100)
    }

    @Test func aPutThatReachedNoNodeIsRetriedSoonThenLessOften() {
        var s = PublishState(stored: nil, refresh: 1800, retry: 1)
        _ = s.version(of: a)
        #expect(s.putDone(sentTo: 0, found: nil, now: 10) == .notReached)
        #expect(s.nextPut(now: 10) == 11)
        #expect(s.putDone(sentTo: 0, found: nil, now: 11) == .notReached)
        #expect(s.nextPut(now: 11) == 13)
        for t in 0..<8 { _ = s.putDone(sentTo: 0, found: nil, now: 20 + Double(t)) }
        #expect(s.nextPut(now: 27) == 27 + 30)  // at most every 30 s
        // A new version starts again at once, then 1 s.
        _ = s.version(of: b)
        #expect(s.nextPut(now: 30) == 30)
    }

    @Test func aPutThatReachedNodesIsRepeatedWellBeforeTwoHours() {
        var s = PublishState(stored: nil, refresh: 1800, retry: 5)
        _ = s.version(of: a)
        #expect(s.putDone(sentTo: 0, found: nil, now: 10) == .notReached)
        #expect(s.putDone(sentTo: 8, found: .init(seq: 1, value: a), now: 15) == .published(sentTo: 8, first: true))
        #expect(s.nextPut(now: 16) == 1815)
        #expect(s.nextPut(now: 1815) + 0 < 15 + 2 * 3600)
        #expect(s.putDone(sentTo: 8, found: nil, now: 1815) == .published(sentTo: 8, first: false))
        #expect(s.nextPut(now: 1816) == 3615)
    }

    @Test func aRefreshThatReachesNoNodeIsRetriedSoon() {
        var s = PublishState(stored: nil, refresh: 1800, retry: 5)
        _ = s.version(of: a)
        _ = s.putDone(sentTo: 3, found: nil, now: 0)
        // The last put that reached a node still sets the refresh; a miss does not push it back.
        #expect(s.putDone(sentTo: 0, found: nil, now: 1800) == .notReached)
        #expect(s.nextPut(now: 1801) == 1800)
    }

    @Test func aNewVersionRestartsTheSchedule() {
        var s = PublishState(stored: nil, refresh: 1800, retry: 5)
        _ = s.version(of: a)
        _ = s.putDone(sentTo: 3, found: nil, now: 0)
        _ = s.version(of: b)
        #expect(s.nextPut(now: 50) == 50)
        #expect(s.putDone(sentTo: 3, found: nil, now: 50) == .published(sentTo: 3, first: true))
    }

    @Test func aNewerItemInTheDHTOutbidsThePutAndTheNextSeqGoesAboveIt() {
        var s = PublishState(stored: .init(seq: 1, value: a))
        _ = s.version(of: a)
        let newer = PublishedVersion(seq: 4, value: b)
        #expect(s.putDone(sentTo: 8, found: newer, now: 0) == .outbid(by: newer))
        #expect(s.version(of: a)?.seq == 5)
    }

    @Test func theSameSeqWithAnotherValueOutbidsToo() {
        var s = PublishState(stored: nil)
        _ = s.version(of: a)
        let other = PublishedVersion(seq: 1, value: b)
        #expect(s.putDone(sentTo: 2, found: other, now: 0) == .outbid(by: other))
        #expect(s.version(of: a)?.seq == 2)
    }

    @Test func aNewerItemNamingThisValueIsAdopted() {
        var s = PublishState(stored: nil)
        _ = s.version(of: a)
        let same = PublishedVersion(seq: 6, value: a)
        #expect(s.putDone(sentTo: 2, found: same, now: 0) == .outbid(by: same))
        #expect(s.version(of: a)?.seq == 6)
    }

    @Test func anOlderItemInTheDHTIsNoOutbid() {
        var s = PublishState(stored: .init(seq: 5, value: a))
        _ = s.version(of: b)
        #expect(s.putDone(sentTo: 2, found: .init(seq: 3, value: c), now: 0) == .published(sentTo: 2, first: true))
        #expect(s.current?.seq == 6)
    }
}
