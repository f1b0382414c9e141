import Testing
@testable import DHTProtocol

/// Our id is zero, so a node's common prefix with us is the index of its first set bit.
private let me = NodeID.zero

/// An id sharing exactly `cpl` leading bits with `me`, told apart by `tag` in the low word.
private func nodeID(cpl: Int, tag: UInt32) -> NodeID {
    precondition(cpl < 128)
    return NodeID.mask(prefixLength: cpl + 1) & ~NodeID.mask(prefixLength: cpl) | NodeID(high: 0, middle: 0, low: tag)
}

/// Each (cpl, tag) gets its own address unless `host` forces a shared one.
private func node(cpl: Int, tag: UInt32, host: UInt32? = nil) -> NodeInfo {
    NodeInfo(id: nodeID(cpl: cpl, tag: tag), endpoint: Endpoint(ip: .v4(0x0a00_0000 | (host ?? UInt32(cpl) << 16 | tag)), port: 6881))
}

private let minute = 60.0

@Suite struct RoutingTableBuckets {
    @Test func aFullBucketHoldingOurIDSplitsOthersDoNot() {
        var clock = ManualClock()
        var table = RoutingTable(ownID: me, now: clock.now)
        for t in 1...8 { #expect(table.heard(from: node(cpl: 0, tag: UInt32(t)), .replied, now: clock.now) == .added) }
        #expect(table.bucketCount == 1 && table.count == 8)
        // A ninth far node: the only bucket holds our id, so it splits; all eight are far
        // (cpl 0) and stay in bucket 0, which is full of good nodes.
        clock.advance(1)
        #expect(table.heard(from: node(cpl: 0, tag: 9), .replied, now: clock.now) == .cached)
        #expect(table.bucketCount == 2 && table.count == 8)
        // Nearer nodes go to the new last bucket.
        #expect(table.heard(from: node(cpl: 1, tag: 1), .replied, now: clock.now) == .added)
        #expect(table.heard(from: node(cpl: 5, tag: 1), .replied, now: clock.now) == .added)
        #expect(table.bucketPrefixes == [NodeIDPrefix(me.flippingBit(0), length: 1), NodeIDPrefix(me, length: 1)])
        // Bucket 0 stays full and never splits again, however many far nodes arrive.
        for t in 10...30 { _ = table.heard(from: node(cpl: 0, tag: UInt32(t)), .replied, now: clock.now) }
        #expect(table.bucketCount == 2 && table.count == 10)
    }

    @Test func splittingCascadesUntilTheNewcomerFits() {
        var table = RoutingTable(ownID: me, now: 0)
        for t in 1...8 { _ = table.heard(from: node(cpl: 6, tag: UInt32(t)), .replied, now: 0) }
        // All eight share 6 bits with us; a node sharing 3 needs splits down to bucket 3.
        #expect(table.heard(from: node(cpl: 3, tag: 1), .replied, now: 0) == .added)
        #expect(table.bucketCount == 5)
        #expect(table.count == 9)
        #expect(table.bucketPrefixes[3] == NodeIDPrefix(me.flippingBit(3), length: 4))
        #expect(table.bucketPrefixes.last == NodeIDPrefix(me, length: 4))
    }

    @Test func ourOwnIDIsNeverAdded() {
        var table = RoutingTable(ownID: me, now: 0)
        let us = NodeInfo(id: me, endpoint: Endpoint(ip: IPAddress("203.0.113.1")!, port: 1))
        #expect(table.heard(from: us, .replied, now: 0) == .rejected(.ownID))
        #expect(table.count == 0)
    }

    @Test func theHardCapHolds() {
        var config = RoutingTable.Configuration()
        config.maxNodes = 10
        var table = RoutingTable(ownID: me, now: 0, configuration: config)
        var outcomes: [RoutingTable.Outcome] = []
        for cpl in 0..<4 {
            for t in 1...4 { outcomes.append(table.heard(from: node(cpl: cpl, tag: UInt32(t)), .replied, now: 0)) }
        }
        #expect(table.count == 10)
        #expect(outcomes.filter { $0 == .added }.count == 10)
        #expect(outcomes.filter { $0 == .cached }.count == 6)
        // At the cap, a bad node in another bucket gives up its place.
        table.failed(node(cpl: 0, tag: 1).id, now: 1)
        table.failed(node(cpl: 0, tag: 1).id, now: 2)
        #expect(table.heard(from: node(cpl: 9, tag: 1), .replied, now: 3) == .added)
        #expect(table.count == 10 && table.entry(for: node(cpl: 0, tag: 1).id) == nil)
    }
}

@Suite struct RoutingTableNodeStates {
    @Test func goodQuestionableBad() {
        var clock = ManualClock()
        var table = RoutingTable(ownID: me, now: clock.now)
        let replier = node(cpl: 0, tag: 1), asker = node(cpl: 0, tag: 2)
        _ = table.heard(from: replier, .replied, now: clock.now)
        _ = table.heard(from: asker, .queriedUs, now: clock.now)
        #expect(table.state(of: replier.id, now: clock.now) == .good)
        // Having only queried us does not make a node good.
        #expect(table.state(of: asker.id, now: clock.now) == .questionable)

        clock.advance(15 * minute - 1)
        #expect(table.state(of: replier.id, now: clock.now) == .good)
        clock.advance(1)
        #expect(table.state(of: replier.id, now: clock.now) == .questionable)
        // A query from a node that has replied before makes it good again.
        _ = table.heard(from: replier, .queriedUs, now: clock.now)
        #expect(table.state(of: replier.id, now: clock.now) == .good)

        // Two failures in a row make it bad; one does not; a reply clears the count.
        table.failed(replier.id, now: clock.now)
        #expect(table.state(of: replier.id, now: clock.now) == .good)
        _ = table.heard(from: replier, .replied, now: clock.now)
        table.failed(replier.id, now: clock.now)
        #expect(table.state(of: replier.id, now: clock.now) == .good)
        table.failed(replier.id, now: clock.now)
        #expect(table.state(of: replier.id, now: clock.now) == .bad)
        #expect(table.state(of: NodeID.max, now: clock.now) == nil)
    }

    @Test func aFullBucketAsksToPingItsStalestQuestionableNodeThenReplacesIt() throws {
        var clock = ManualClock()
        var table = RoutingTable(ownID: me, now: clock.now)
        for t in 1...8 {
            _ = table.heard(from: node(cpl: 0, tag: UInt32(t)), .replied, now: clock.now)
            clock.advance(1)
        }
        _ = table.heard(from: node(cpl: 1, tag: 1), .replied, now: clock.now)  // forces the split
        clock.advance(16 * minute)
        for t in 3...8 { _ = table.heard(from: node(cpl: 0, tag: UInt32(t)), .replied, now: clock.now) }
        // Tags 1 and 2 are questionable now; 1 was heard from longest ago.
        let newcomer = node(cpl: 0, tag: 100)
        #expect(table.heard(from: newcomer, .replied, now: clock.now) == .pingFirst(node(cpl: 0, tag: 1)))
        #expect(table.entry(for: newcomer.id) == nil)
        #expect(table.failed(node(cpl: 0, tag: 1).id, now: clock.now) == nil)
        #expect(table.failed(node(cpl: 0, tag: 1).id, now: clock.now) == newcomer)
        #expect(table.entry(for: newcomer.id)?.node == newcomer)
        #expect(table.entry(for: node(cpl: 0, tag: 1).id) == nil)
        #expect(table.count == 9)
    }

    @Test func aBadNodeIsReplacedAtOnce() {
        var table = RoutingTable(ownID: me, now: 0)
        for t in 1...8 { _ = table.heard(from: node(cpl: 0, tag: UInt32(t)), .replied, now: 0) }
        _ = table.heard(from: node(cpl: 2, tag: 1), .replied, now: 0)
        table.failed(node(cpl: 0, tag: 4).id, now: 1)
        table.failed(node(cpl: 0, tag: 4).id, now: 2)
        #expect(table.heard(from: node(cpl: 0, tag: 50), .replied, now: 3) == .replaced(bad: node(cpl: 0, tag: 4)))
        #expect(table.count == 9)
    }

    @Test func aBucketFullOfGoodNodesKeepsTheNewcomerForLater() {
        var table = RoutingTable(ownID: me, now: 0)
        for t in 1...8 { _ = table.heard(from: node(cpl: 0, tag: UInt32(t)), .replied, now: 0) }
        _ = table.heard(from: node(cpl: 3, tag: 1), .replied, now: 0)
        let waiting = node(cpl: 0, tag: 77)
        #expect(table.heard(from: waiting, .replied, now: 1) == .cached)
        table.failed(node(cpl: 0, tag: 8).id, now: 2)
        #expect(table.failed(node(cpl: 0, tag: 8).id, now: 3) == waiting)
    }

    @Test func aKnownIDFromAnotherEndpointIsIgnoredUntilTheOldOneIsBad() {
        var table = RoutingTable(ownID: me, now: 0)
        let real = node(cpl: 0, tag: 1)
        let spoof = NodeInfo(id: real.id, endpoint: Endpoint(ip: IPAddress("198.51.100.9")!, port: 6881))
        _ = table.heard(from: real, .replied, now: 0)
        #expect(table.heard(from: spoof, .replied, now: 1) == .rejected(.idAtOtherEndpoint))
        #expect(table.entry(for: real.id)?.node == real)
        table.failed(real.id, now: 2)
        table.failed(real.id, now: 3)
        #expect(table.heard(from: spoof, .replied, now: 4) == .updated)
        #expect(table.entry(for: real.id)?.node == spoof)
        #expect(table.state(of: real.id, now: 4) == .good)
    }

    @Test func oneIDPerEndpoint() {
        var table = RoutingTable(ownID: me, now: 0)
        let first = node(cpl: 0, tag: 1, host: 7), second = node(cpl: 1, tag: 2, host: 7)
        _ = table.heard(from: first, .replied, now: 0)
        #expect(table.heard(from: second, .replied, now: 1) == .rejected(.endpointHasOtherID))
        table.failed(first.id, now: 2)
        table.failed(first.id, now: 3)
        #expect(table.heard(from: second, .replied, now: 4) == .added)
        #expect(table.entry(for: first.id) == nil && table.count == 1)
    }
}

@Suite struct RoutingTableQueries {
    @Test func closestIsSortedByXORAndSkipsBadNodes() {
        var clock = ManualClock()
        var table = RoutingTable(ownID: me, now: clock.now)
        let nodes = (0..<6).map { node(cpl: $0, tag: 1) }
        for n in nodes { _ = table.heard(from: n, .replied, now: clock.now) }
        // Distances from bit 2: node 2 differs only in its tag; then 5 (bits 2, 5), 4, 3, 1, 0.
        let target = nodeID(cpl: 2, tag: 0)
        #expect(table.closest(to: target, count: 3, now: clock.now) == [nodes[2], nodes[5], nodes[4]])
        #expect(table.closest(to: target, count: 100, now: clock.now) == [nodes[2], nodes[5], nodes[4], nodes[3], nodes[1], nodes[0]])
        table.failed(nodes[4].id, now: clock.now)
        table.failed(nodes[4].id, now: clock.now)
        #expect(table.closest(to: target, count: 3, now: clock.now) == [nodes[2], nodes[5], nodes[3]])
        // goodOnly leaves out the questionable ones.
        clock.advance(20 * minute)
        _ = table.heard(from: nodes[5], .replied, now: clock.now)
        #expect(table.closest(to: target, count: 3, now: clock.now, goodOnly: true) == [nodes[5]])
        #expect(table.closest(to: target, count: 3, now: clock.now) == [nodes[2], nodes[5], nodes[3]])
    }

    @Test func staleBucketsAreRefreshedOncePerInterval() {
        var rng = SeededGenerator(seed: 7)
        var clock = ManualClock()
        var table = RoutingTable(ownID: me, now: clock.now)
        for t in 1...8 { _ = table.heard(from: node(cpl: 0, tag: UInt32(t)), .replied, now: clock.now) }
        _ = table.heard(from: node(cpl: 4, tag: 1), .replied, now: clock.now)
        #expect(table.bucketCount == 2)
        #expect(table.dueRefreshes(now: clock.now, using: &rng).isEmpty)

        clock.advance(10 * minute)
        _ = table.heard(from: node(cpl: 4, tag: 1), .replied, now: clock.now)  // only bucket 1 changes
        clock.advance(5 * minute)
        let due = table.dueRefreshes(now: clock.now, using: &rng)
        #expect(due.count == 1)
        #expect(due.allSatisfy { table.bucketPrefixes[0].contains($0) })
        #expect(table.dueRefreshes(now: clock.now, using: &rng).isEmpty)

        clock.advance(15 * minute)
        let both = table.dueRefreshes(now: clock.now, using: &rng)
        #expect(both.count == 2)
        #expect(table.bucketPrefixes[0].contains(both[0]) && table.bucketPrefixes[1].contains(both[1]))
    }

    /// Random traffic against the invariants the README promises.
    @Test(arguments: [1, 2, 3] as [UInt64])
    func invariantsHoldUnderRandomTraffic(_ seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        var config = RoutingTable.Configuration()
        config.maxNodes = 60
        let own = NodeID.random(using: &rng)
        var table = RoutingTable(ownID: own, now: 0, configuration: config)
        var known: [NodeInfo] = []
        var now = 0.0
        for _ in 0..<5_000 {
            now += Double.random(in: 0...5, using: &rng)
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<5:
                // Half the new ids land near ours, so deep buckets get exercised.
                let near = NodeIDPrefix(own, length: Int.random(in: 0...40, using: &rng)).randomID(using: &rng)
                let n = NodeInfo(id: Bool.random(using: &rng) ? near : .random(using: &rng),
                                 endpoint: Endpoint(ip: .v4(UInt32.random(in: 0...0xffff, using: &rng)), port: 6881))
                known.append(n)
                _ = table.heard(from: n, Bool.random(using: &rng) ? .replied : .queriedUs, now: now)
            case 5..<8:
                if let n = known.randomElement(using: &rng) { _ = table.heard(from: n, .replied, now: now) }
            default:
                if let n = known.randomElement(using: &rng) { table.failed(n.id, now: now) }
            }
        }
        let entries = table.entries
        #expect(entries.count == table.count && table.count <= config.maxNodes)
        #expect(Set(entries.map(\.node.id)).count == entries.count)
        #expect(Set(entries.map(\.node.endpoint)).count == entries.count)
        #expect(!entries.contains { $0.node.id == own })
        let prefixes = table.bucketPrefixes
        for p in prefixes {
            #expect(entries.filter { p.contains($0.node.id) }.count <= config.bucketSize)
        }
        for e in entries { #expect(prefixes.filter { $0.contains(e.node.id) }.count == 1) }
        let closest = table.closest(to: own, count: 8, now: now)
        #expect(closest.count <= 8)
        #expect(zip(closest, closest.dropFirst()).allSatisfy { ($0.id ^ own) < ($1.id ^ own) })
        #expect(closest.allSatisfy { table.state(of: $0.id, now: now) != .bad })
    }
}
