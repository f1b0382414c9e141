import DHTProtocol
import Testing
@testable import DHT

/// BEP 32: a node with an IPv4 and an IPv6 socket keeps a table per family, answers
/// `nodes6` to what asks over IPv6 or with `want: n6`, and keeps peers apart by family.
@Suite struct DHTNodeCoreIPv6Tests {
    let v6Asker = Endpoint(ip: IPAddress("2001:db8::1")!, port: 7000)
    let v4Asker = Endpoint(ip: IPAddress("192.0.2.1")!, port: 7000)

    /// A dual-stack node that has heard from `v4` IPv4 nodes and `v6` IPv6 nodes.
    func node(v4: Int, v6: Int) -> DHTNodeCore {
        var node = DHTNodeCore(id: .random(), now: 0)
        node.families = [.ipv4, .ipv6]
        for i in 0..<v4 {
            let q = KRPCMessage.query([0, UInt8(i)], KRPCQuery(sender: .random(), arguments: .ping))
            _ = node.receive(q.encoded(), from: Endpoint(ip: IPAddress("198.51.100.\(i + 1)")!, port: 6881), now: 1)
        }
        for i in 0..<v6 {
            let q = KRPCMessage.query([1, UInt8(i)], KRPCQuery(sender: .random(), arguments: .ping))
            _ = node.receive(q.encoded(), from: Endpoint(ip: IPAddress("2001:db8::\(i + 100)")!, port: 6881), now: 1)
        }
        return node
    }

    func reply(_ node: inout DHTNodeCore, _ arguments: KRPCQuery.Arguments, from: Endpoint) throws -> KRPCResponse {
        let query = KRPCQuery(sender: .random(), arguments: arguments)
        let out = node.receive(KRPCMessage.query([7, 7], query).encoded(), from: from, now: 2)
        let message = try KRPCMessage(decoding: try #require(out.first).bytes) { _ in query.method }
        guard case .response(let r) = message.body else { throw Failure.notAResponse }
        return r
    }

    enum Failure: Error { case notAResponse }

    @Test func eachFamilyHasItsOwnTable() {
        let n = node(v4: 3, v6: 5)
        #expect(n.tables.ipv4.count == 3)
        #expect(n.tables.ipv6.count == 5)
        #expect(n.tables.ipv6.entries.allSatisfy { $0.node.endpoint.ip.family == .ipv6 })
        #expect(n.tables.count == 8)
    }

    @Test func aFindNodeOverIPv6GetsNodes6Only() throws {
        var n = node(v4: 4, v6: 4)
        let r = try reply(&n, .findNode(.init(target: .random())), from: v6Asker)
        #expect(r.nodes == nil)
        #expect(r.nodes6?.count == 5)  // the four, and the asker itself, which just queried
        #expect(r.nodes6?.allSatisfy { $0.endpoint.ip.family == .ipv6 } == true)
    }

    @Test func aFindNodeOverIPv4GetsNodesOnlyUnlessItWantsN6() throws {
        var n = node(v4: 4, v6: 4)
        let plain = try reply(&n, .findNode(.init(target: .random())), from: v4Asker)
        #expect(plain.nodes6 == nil)
        #expect(plain.nodes?.allSatisfy { $0.endpoint.ip.family == .ipv4 } == true)
        let both = try reply(&n, .findNode(.init(target: .random(), want: [.n4, .n6])), from: v4Asker)
        #expect(both.nodes?.count == 5)
        #expect(both.nodes6?.count == 4)
        let onlySix = try reply(&n, .findNode(.init(target: .random(), want: [.n6])), from: v4Asker)
        #expect(onlySix.nodes == nil)
        #expect(onlySix.nodes6?.count == 4)
    }

    @Test func theWireFormOfNodes6Is38BytesAnEntry() throws {
        var n = node(v4: 0, v6: 3)
        let q = KRPCMessage.query([1], KRPCQuery(sender: .random(), arguments: .findNode(.init(target: .random(), want: [.n6]))))
        let out = n.receive(q.encoded(), from: v6Asker, now: 2)
        let bytes = try #require(out.first).bytes
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("6:nodes6\(4 * 38):"))
        #expect(!text.contains("5:nodes"))
    }

    @Test func peersAnnouncedOverIPv6AreGivenToIPv6AskersOnly() throws {
        var n = node(v4: 1, v6: 1)
        let hash = NodeID.random()
        let v4Peer = Endpoint(ip: IPAddress("192.0.2.9")!, port: 9)
        for asker in [v6Asker, v4Peer] {
            let token = try #require(try reply(&n, .getPeers(.init(infoHash: hash)), from: asker).token)
            _ = try reply(&n, .announcePeer(.init(infoHash: hash, port: 5000, token: token)), from: asker)
        }
        let six = try reply(&n, .getPeers(.init(infoHash: hash)), from: Endpoint(ip: IPAddress("2001:db8::2")!, port: 1))
        #expect(six.values == [Endpoint(ip: v6Asker.ip, port: 5000)])
        let four = try reply(&n, .getPeers(.init(infoHash: hash)), from: Endpoint(ip: IPAddress("192.0.2.2")!, port: 1))
        #expect(four.values == [Endpoint(ip: v4Peer.ip, port: 5000)])
    }

    @Test func aNodeWithoutAnIPv6SocketNeitherQueriesNorKeepsIPv6Candidates() {
        var n = DHTNodeCore(id: .random(), now: 0)
        let out = n.bootstrap([Endpoint(ip: IPAddress("2001:db8::5")!, port: 6881), v4Asker], now: 1)
        #expect(out.map(\.to) == [v4Asker])
    }

    /// A reply naming multicast or IPv4-mapped addresses in `nodes6` gets none of them queried.
    @Test func nodes6NamingMulticastOrMappedAddressesAreNotQueried() throws {
        var n = DHTNodeCore(id: .random(), now: 0)
        n.families = [.ipv6]
        let first = Endpoint(ip: IPAddress("2001:db8::1")!, port: 6881)
        let (_, out) = n.getPeers(.random(), announcePort: nil, now: 1)
        #expect(out.isEmpty)
        let boot = n.bootstrap([first], now: 1)
        let q = try KRPCMessage(decoding: try #require(boot.first).bytes) { _ in nil }
        let named = [IPAddress("ff02::1")!, IPAddress("::ffff:7f00:1")!, IPAddress("2001:db8::2")!]
            .map { NodeInfo(id: .random(), endpoint: Endpoint(ip: $0, port: 6881)) }
        let reply = KRPCMessage.response(q.transactionID, KRPCResponse(id: .random(), nodes6: named)).encoded()
        let sent = n.receive(reply, from: first, now: 1.1)
        #expect(sent.map(\.to.ip) == [IPAddress("2001:db8::2")!])
    }

    /// Queries from many addresses of one /64 share one budget: at most the burst (twice the
    /// per-address rate) is answered, while another /64 is still answered.
    @Test func anIPv6FloodFromOne64IsLimitedAsOneAddress() {
        var n = DHTNodeCore(id: .random(), now: 0)
        n.families = [.ipv6]
        var answered = 0
        for i in 0..<300 {
            let q = KRPCMessage.query([UInt8(i & 0xff)], KRPCQuery(sender: .random(), arguments: .ping)).encoded()
            let from = Endpoint(ip: .v6(high: 0x2001_0db8_0000_0001, low: UInt64(i + 1)), port: 6881)
            answered += n.receive(q, from: from, now: 5).count
        }
        #expect(answered == Int(2 * n.configuration.perAddressRate))
        let other = KRPCMessage.query([1], KRPCQuery(sender: .random(), arguments: .ping)).encoded()
        #expect(n.receive(other, from: Endpoint(ip: .v6(high: 0x2001_0db8_0000_0002, low: 1), port: 6881), now: 5).count == 1)
    }

    @Test func aDualStackNodeAsksForBothFamilies() throws {
        var n = DHTNodeCore(id: .random(), now: 0)
        n.families = [.ipv4, .ipv6]
        let out = n.bootstrap([Endpoint(ip: IPAddress("2001:db8::5")!, port: 6881), v4Asker], now: 1)
        #expect(out.count == 2)
        let q = try KRPCMessage(decoding: try #require(out.first).bytes) { _ in nil }
        guard case .query(let query) = q.body, case .findNode(let f) = query.arguments else { Issue.record("not a find_node"); return }
        #expect(f.want == [.n4, .n6])
    }

    /// An IPv6-only network (as on ::1): twenty nodes that each know one other join, and
    /// every node finds a peer announced over IPv6.
    @Test func anIPv6OnlyNetworkConvergesAndFindsAnAnnouncedPeer() {
        var net = Network(count: 12)
        net.endpoints = (0..<12).map { Endpoint(ip: IPAddress("2001:db8::\($0 + 1)")!, port: UInt16(20_000 + $0)) }
        for i in net.nodes.indices { net.nodes[i].families = [.ipv6] }
        for i in 1..<12 {
            net.send(i, net.nodes[i].bootstrap([net.endpoints[i - 1]], now: net.now))
            net.run()
        }
        for i in 0..<12 {
            net.send(i, net.nodes[i].bootstrap([net.endpoints[(i + 1) % 12]], now: net.now))
            net.run()
        }
        #expect(net.nodes.allSatisfy { $0.tables.ipv6.count >= 8 && $0.tables.ipv4.count == 0 })
        let hash = NodeID.random()
        let (_, out) = net.nodes[3].getPeers(hash, announcePort: 6881, now: net.now)
        net.send(3, out)
        net.run()
        for i in net.nodes.indices where i != 3 {
            let (l, out) = net.nodes[i].getPeers(hash, announcePort: nil, now: net.now)
            net.send(i, out)
            net.run()
            let found = net.nodes[i].drainEvents().flatMap { e -> [Endpoint] in if case .peers(l, let p) = e { p } else { [] } }
            #expect(found.contains(Endpoint(ip: net.endpoints[3].ip, port: 6881)), "node \(i)")
        }
    }
}

/// A node on a wildcard socket learns its own address from each query (packet info): a
/// get_peers for a hash its host serves is answered with the address the query came to.
@Suite struct DHTNodeCoreServedTests {
    func values(_ node: inout DHTNodeCore, _ hash: NodeID, from: Endpoint, at local: IPAddress?) throws -> [Endpoint]? {
        let query = KRPCQuery(sender: .random(), arguments: .getPeers(.init(infoHash: hash)))
        let out = node.receive(KRPCMessage.query([3], query).encoded(), from: from, at: local, now: 1)
        let message = try KRPCMessage(decoding: try #require(out.first).bytes) { _ in .getPeers }
        guard case .response(let r) = message.body else { return nil }
        return r.values
    }

    @Test func aServedHashIsAnsweredWithTheAddressTheQueryCameTo() throws {
        var n = DHTNodeCore(id: .random(), now: 0)
        let hash = NodeID.random()
        let asker6 = Endpoint(ip: IPAddress("2001:db8::9")!, port: 1)
        let here6 = IPAddress("2001:db8::1")!
        #expect(try values(&n, hash, from: asker6, at: here6) == nil)
        n.serve(hash, port: 6881)
        #expect(try values(&n, hash, from: asker6, at: here6) == [Endpoint(ip: here6, port: 6881)])
        // Not without a known address, nor one of the other family, nor for another hash.
        #expect(try values(&n, hash, from: asker6, at: nil) == nil)
        #expect(try values(&n, hash, from: asker6, at: IPAddress("192.0.2.1")!) == nil)
        #expect(try values(&n, .random(), from: asker6, at: here6) == nil)
        n.serve(hash, port: nil)
        #expect(try values(&n, hash, from: asker6, at: here6) == nil)
    }
}
