import Testing
@testable import DHTProtocol

@Suite struct RoutingTablesTests {
    @Test func nodesGoToTheTableOfTheirFamilyAndClosestMergesTheAskedFamilies() {
        var rng = SeededGenerator(seed: 32)
        let own = NodeID.random(using: &rng)
        var tables = RoutingTables(ownID: own, now: 0)
        let four = (1...5).map { NodeInfo(id: .random(using: &rng), endpoint: Endpoint(ip: IPAddress("192.0.2.\($0)")!, port: 1)) }
        let six = (1...5).map { NodeInfo(id: .random(using: &rng), endpoint: Endpoint(ip: IPAddress("2001:db8::\($0)")!, port: 1)) }
        for n in four + six { #expect(tables.heard(from: n, .replied, now: 1) == .added) }
        #expect(tables.ipv4.count == 5 && tables.ipv6.count == 5 && tables.count == 10)
        let target = NodeID.random(using: &rng)
        #expect(Set(tables.closest(to: target, count: 8, now: 2, families: [.ipv6])) == Set(six))
        let both = tables.closest(to: target, count: 8, now: 2, families: [.ipv4, .ipv6])
        let expected = (four + six).sorted { ($0.id ^ target) < ($1.id ^ target) }.prefix(8)
        #expect(both == Array(expected))
    }

    @Test func oneIDMayBeInBothTables() {
        var tables = RoutingTables(ownID: .random(), now: 0)
        let id = NodeID.random()
        #expect(tables.heard(from: NodeInfo(id: id, endpoint: Endpoint(ip: IPAddress("192.0.2.1")!, port: 1)), .replied, now: 1) == .added)
        #expect(tables.heard(from: NodeInfo(id: id, endpoint: Endpoint(ip: IPAddress("2001:db8::1")!, port: 1)), .replied, now: 1) == .added)
        #expect(tables.count == 2)
    }

    @Test func aFailureCountsInTheTableOfTheFamilyQueried() {
        var c = RoutingTable.Configuration()
        c.maxFailures = 1
        var tables = RoutingTables(ownID: .random(), now: 0, configuration: c)
        let id = NodeID.random()
        _ = tables.heard(from: NodeInfo(id: id, endpoint: Endpoint(ip: IPAddress("192.0.2.1")!, port: 1)), .replied, now: 1)
        _ = tables.heard(from: NodeInfo(id: id, endpoint: Endpoint(ip: IPAddress("2001:db8::1")!, port: 1)), .replied, now: 1)
        _ = tables.failed(id, family: .ipv6, now: 2)
        #expect(tables.ipv6.state(of: id, now: 2) == .bad)
        #expect(tables.ipv4.state(of: id, now: 2) == .good)
    }
}
