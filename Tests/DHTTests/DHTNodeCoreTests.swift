import DHTProtocol
import Testing
@testable import DHT

/// Nodes exchanging datagrams through an in-memory network with a manual clock.
struct Network {
    var nodes: [DHTNodeCore]
    var endpoints: [Endpoint]
    var now: Double = 1000
    var queue: [(from: Int, DHTNodeCore.Outgoing)] = []
    var delivered = 0

    init(count: Int) {
        var rng = SystemRandom()  // not the storage-less system generator: see SystemRandom
        nodes = (0..<count).map { _ in DHTNodeCore(id: NodeID.random(using: &rng), now: 1000) }
        endpoints = (0..<count).map { Endpoint(ip: IPAddress("127.0.0.\($0 % 250 + 1)")!, port: UInt16(20_000 + $0)) }
    }

    mutating func send(_ from: Int, _ out: [DHTNodeCore.Outgoing]) { queue += out.map { (from, $0) } }

    /// Delivers until nothing is left (bounded), advancing the clock a little per round.
    mutating func run(rounds: Int = 200) {
        for _ in 0..<rounds where !queue.isEmpty {
            let batch = queue
            queue.removeAll()
            now += 0.01
            for (from, o) in batch {
                guard let to = endpoints.firstIndex(of: o.to) else { continue }
                delivered += 1
                send(to, nodes[to].receive(o.bytes, from: endpoints[from], now: now))
            }
        }
    }

    mutating func tick(_ seconds: Double) {
        now += seconds
        for i in nodes.indices { send(i, nodes[i].tick(now: now)) }
        run()
    }
}

@Suite struct DHTNodeCoreTests {
    @Test func aChainOfTwentyNodesConvergesAndEveryNodeFindsAnAnnouncedPeer() {
        var net = Network(count: 20)
        // Each node knows only the one before it.
        for i in 1..<20 {
            net.send(i, net.nodes[i].bootstrap([net.endpoints[i - 1]], now: net.now))
            net.run()
        }
        // A second round of joins lets the early nodes learn of the later ones.
        for i in 0..<20 {
            net.send(i, net.nodes[i].bootstrap([net.endpoints[(i + 1) % 20]], now: net.now))
            net.run()
        }
        #expect(net.nodes.allSatisfy { $0.table.count >= 8 })
        let infoHash = NodeID.random()
        let (_, out) = net.nodes[7].getPeers(infoHash, announcePort: 6881, now: net.now)
        net.send(7, out)
        net.run()
        let announced = net.nodes[7].drainEvents().contains { if case .lookupDone(_, _, let a) = $0 { a > 0 } else { false } }
        #expect(announced)
        for i in net.nodes.indices where i != 7 {
            let (l, out) = net.nodes[i].getPeers(infoHash, announcePort: nil, now: net.now)
            net.send(i, out)
            net.run()
            let found = net.nodes[i].drainEvents().flatMap { e -> [Endpoint] in if case .peers(l, let p) = e { p } else { [] } }
            #expect(found.contains(Endpoint(ip: net.endpoints[7].ip, port: 6881)), "node \(i)")
        }
    }

    @Test func anAnnounceWithABadTokenGetsError203AndStoresNothing() throws {
        var a = DHTNodeCore(id: .random(), now: 0)
        let me = Endpoint(ip: IPAddress("127.0.0.2")!, port: 4000)
        let hash = NodeID.random()
        let q = KRPCMessage.query([1, 2], KRPCQuery(sender: .random(), arguments: .announcePeer(.init(infoHash: hash, port: 5000, token: [9, 9, 9]))))
        let out = a.receive(q.encoded(), from: me, now: 1)
        let reply = try KRPCMessage(decoding: try #require(out.first).bytes) { _ in .announcePeer }
        guard case .error(let e) = reply.body else { Issue.record("expected an error"); return }
        #expect(e.code == .protocolError)
        let (_, _) = a.getPeers(hash, announcePort: nil, now: 2)
        #expect(!a.drainEvents().contains { if case .peers = $0 { true } else { false } })
    }

    @Test func malformedDatagramsAndRepliesNobodyAskedForAreDropped() {
        var a = DHTNodeCore(id: .random(), now: 0)
        let src = Endpoint(ip: IPAddress("127.0.0.3")!, port: 4000)
        for junk: [UInt8] in [[], Array("garbage".utf8), Array("d1:y1:re".utf8), [UInt8](repeating: 0x64, count: 2000)] {
            #expect(a.receive(junk, from: src, now: 1).isEmpty)
        }
        let unsolicited = KRPCMessage.response([7, 7], KRPCResponse(id: .random())).encoded()
        #expect(a.receive(unsolicited, from: src, now: 1).isEmpty)
        #expect(a.table.count == 0)
    }

    @Test func anUnknownMethodGetsError204() throws {
        var a = DHTNodeCore(id: .random(), now: 0)
        let src = Endpoint(ip: IPAddress("127.0.0.4")!, port: 4000)
        let q = Array("d1:ad2:id20:abcdefghij0123456789e1:q4:nope1:t2:aa1:y1:qe".utf8)
        let out = a.receive(q, from: src, now: 1)
        let reply = try KRPCMessage(decoding: try #require(out.first).bytes) { _ in .ping }
        guard case .error(let e) = reply.body else { Issue.record("expected an error"); return }
        #expect(e.code == .methodUnknown)
        #expect(out[0].bytes.count <= q.count)
    }

    @Test func aFloodFromOneAddressIsCutToItsRateAndRepliesStaySmall() {
        var a = DHTNodeCore(id: .random(), now: 0)
        // Fill the table so find_node replies carry nodes.
        for i in 0..<64 {
            _ = a.receive(KRPCMessage.query([0, UInt8(i)], KRPCQuery(sender: .random(), arguments: .ping)).encoded(),
                          from: Endpoint(ip: IPAddress("10.0.\(i).1")!, port: 6881), now: Double(i))
        }
        let flooder = Endpoint(ip: IPAddress("127.0.0.9")!, port: 4000)
        var answered = 0
        for i in 0..<1000 {
            let q = KRPCMessage.query([1, UInt8(i & 0xff)], KRPCQuery(sender: .random(), arguments: .findNode(.init(target: .random())))).encoded()
            for o in a.receive(q, from: flooder, now: 100) {
                answered += 1
                #expect(o.bytes.count <= 8 * q.count)
            }
        }
        #expect(answered <= Int(2 * a.configuration.perAddressRate))
        #expect(answered > 0)
    }

    @Test func ourExternalAddressIsWhatThreeAnsweringNodesAgreeOn() throws {
        var a = DHTNodeCore(id: .random(), now: 0)
        let me = Endpoint(ip: IPAddress("203.0.113.7")!, port: 6881)
        let voters = (1...3).map { Endpoint(ip: IPAddress("127.0.0.\($0 + 10)")!, port: 7000) }
        let out = a.bootstrap(voters, now: 0)
        for (i, o) in out.enumerated() {
            let query = try KRPCMessage(decoding: o.bytes) { _ in nil }
            let reply = KRPCMessage.response(query.transactionID, KRPCResponse(id: .random(), nodes: []), requester: me).encoded()
            _ = a.receive(reply, from: voters[i], now: 1)
            #expect(a.externalAddress == (i == 2 ? me.ip : nil))
        }
        #expect(a.drainEvents().contains(.externalAddress(me.ip)))
        // A reply to nothing we asked cannot vote.
        var b = DHTNodeCore(id: .random(), now: 0)
        for v in voters { _ = b.receive(KRPCMessage.response([1, 1], KRPCResponse(id: .random(), nodes: []), requester: me).encoded(), from: v, now: 1) }
        #expect(b.externalAddress == nil)
    }

    @Test func nodesAtPortZeroOrBroadcastAddressesAreNeverQueried() throws {
        var a = DHTNodeCore(id: .random(), now: 0)
        let boot = Endpoint(ip: IPAddress("127.0.0.20")!, port: 7000)
        let out = a.bootstrap([boot], now: 0)
        let query = try KRPCMessage(decoding: out[0].bytes) { _ in nil }
        let poison = ["127.0.0.1:0", "255.255.255.255:6881", "224.0.0.1:6881", "0.0.0.0:9"].map { text -> NodeInfo in
            let parts = text.split(separator: ":")
            return NodeInfo(id: .random(), endpoint: Endpoint(ip: IPAddress(String(parts[0]))!, port: UInt16(parts[1])!))
        }
        let reply = KRPCMessage.response(query.transactionID, KRPCResponse(id: .random(), nodes: poison)).encoded()
        let next = a.receive(reply, from: boot, now: 1)
        #expect(next.isEmpty)
        #expect(!DHTNodeCore.isDialable(Endpoint(ip: IPAddress("127.0.0.1")!, port: 0)))
        #expect(DHTNodeCore.isDialable(Endpoint(ip: IPAddress("127.0.0.1")!, port: 1)))
    }

    @Test func unansweredQueriesFailAndLookupsEnd() {
        var a = DHTNodeCore(id: .random(), now: 0)
        let silent = Endpoint(ip: IPAddress("127.0.0.5")!, port: 1)
        let out = a.bootstrap([silent], now: 0)
        #expect(out.count == 1)
        #expect(a.activeLookups == 1)
        _ = a.tick(now: 10)
        #expect(a.pendingQueries == 0)
        #expect(a.activeLookups == 0)
        #expect(a.table.count == 0)
    }
}
