/// The two routing tables of a node on IPv4 and IPv6 (BEP 32): the same keyspace, kept
/// apart by address family, since a node reached over IPv4 says nothing about reaching
/// it over IPv6. Each node goes to the table of its endpoint's family.
public struct RoutingTables: Sendable {
    public private(set) var ipv4: RoutingTable
    public private(set) var ipv6: RoutingTable

    public init(ownID: NodeID, now: Double, configuration: RoutingTable.Configuration = RoutingTable.Configuration()) {
        ipv4 = RoutingTable(ownID: ownID, now: now, configuration: configuration)
        ipv6 = RoutingTable(ownID: ownID, now: now, configuration: configuration)
    }

    public subscript(family: AddressFamily) -> RoutingTable {
        family == .ipv4 ? ipv4 : ipv6
    }

    /// Nodes in both tables.
    public var count: Int { ipv4.count + ipv6.count }

    public mutating func heard(from node: NodeInfo, _ contact: RoutingTable.Contact, now: Double) -> RoutingTable.Outcome {
        switch node.endpoint.ip.family {
        case .ipv4: ipv4.heard(from: node, contact, now: now)
        case .ipv6: ipv6.heard(from: node, contact, now: now)
        }
    }

    /// One of our queries to `id` at an address of `family` went unanswered.
    public mutating func failed(_ id: NodeID, family: AddressFamily, now: Double) -> NodeInfo? {
        switch family {
        case .ipv4: ipv4.failed(id, now: now)
        case .ipv6: ipv6.failed(id, now: now)
        }
    }

    /// Up to `count` nodes nearest `target` from the tables of `families`, nearest first.
    public func closest(to target: NodeID, count: Int, now: Double, families: Set<AddressFamily>) -> [NodeInfo] {
        var nodes: [NodeInfo] = []
        if families.contains(.ipv4) { nodes += ipv4.closest(to: target, count: count, now: now) }
        if families.contains(.ipv6) { nodes += ipv6.closest(to: target, count: count, now: now) }
        guard families.count > 1 else { return nodes }
        nodes.sort { ($0.id ^ target) < ($1.id ^ target) }
        return Array(nodes.prefix(count))
    }

    /// Refresh targets of the stale buckets of the tables of `families` (see
    /// `RoutingTable.dueRefreshes`).
    public mutating func dueRefreshes(now: Double, families: Set<AddressFamily>) -> [NodeID] {
        (families.contains(.ipv4) ? ipv4.dueRefreshes(now: now) : []) + (families.contains(.ipv6) ? ipv6.dueRefreshes(now: now) : [])
    }
}
