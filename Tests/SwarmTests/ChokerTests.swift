import Testing
@testable import Swarm

@Suite struct Choking {
    final class Peer {}

    @Test func slotsFillThenRotateSoEveryoneProgresses() {
        var c = Choker(slots: 2)
        let keep = (0..<4).map { _ in Peer() }
        let ids = keep.map(ObjectIdentifier.init)
        #expect(c.interest(ids[0], interested: true, now: 0).map(\.1) == [false])
        #expect(c.interest(ids[1], interested: true, now: 1).map(\.1) == [false])
        #expect(c.interest(ids[2], interested: true, now: 2).isEmpty)
        #expect(c.interest(ids[3], interested: true, now: 3).isEmpty)
        var served = Set(c.unchoked.keys)
        for t in 1...4 {
            let d = c.rotate(now: Double(10 * t))
            #expect(d.count == 2 && c.unchoked.count == 2)
            served.formUnion(c.unchoked.keys)
        }
        #expect(served == Set(ids))
    }

    @Test func aLeavingPeerHandsItsSlotOn() {
        var c = Choker(slots: 1)
        let keep = (0..<2).map { _ in Peer() }
        let ids = keep.map(ObjectIdentifier.init)
        _ = c.interest(ids[0], interested: true, now: 0)
        _ = c.interest(ids[1], interested: true, now: 0)
        let d = c.remove(ids[0], now: 1)
        #expect(d.count == 1 && d[0].0 == ids[1] && d[0].1 == false)
    }

    /// A peer removed on close gives its slot on at once, and nothing of it is left to rotate.
    @Test func aClosedPeerLeavesNoTrace() {
        var c = Choker(slots: 1)
        let keep = (0..<2).map { _ in Peer() }
        let ids = keep.map(ObjectIdentifier.init)
        _ = c.interest(ids[0], interested: true, now: 0)
        _ = c.interest(ids[1], interested: true, now: 0)
        #expect(c.remove(ids[0], now: 1).map(\.1) == [false])
        #expect(c.remove(ids[0], now: 2).isEmpty)  // a second removal changes nothing
        #expect(c.rotate(now: 20).isEmpty)
        #expect(Array(c.unchoked.keys) == [ids[1]] && c.waiting.isEmpty)
    }
}
