import Bencode
import DHTProtocol
import Signing
import Testing
@testable import DHT

/// A node answering an item lookup with a forged newer item is told about (an event naming
/// the node and why), not only counted: the gateway reports it, and keeps the valid item.
@Suite struct DHTItemRefusedTests {
    @Test(arguments: ["forged", "oversized"])
    func aBadNewerItemIsAnEventNamingTheNode(_ kind: String) throws {
        let key = try Ed25519PrivateKey.generate()
        var core = DHTNodeCore(id: NodeID.random(), now: 0)
        let fakes = [Endpoint(ip: IPAddress("10.0.0.1")!, port: 1001), Endpoint(ip: IPAddress("10.0.0.2")!, port: 1002)]
        let ids = [NodeID.random(), NodeID.random()]
        var now = 1.0
        for o in core.bootstrap(fakes, now: now) {
            let t = try #require(DHTItemLookupTests.transaction(of: o.bytes))
            let i = try #require(fakes.firstIndex(of: o.to))
            now += 0.01
            _ = core.receive(KRPCMessage.response(t, KRPCResponse(id: ids[i], nodes: [])).encoded(), from: o.to, now: now)
        }
        let real = try MutableItem(signing: .string("real"), seq: 2, with: key)
        let target = MutableItem.target(publicKey: key.publicKey, salt: [])
        _ = core.drainEvents()
        let (_, out) = core.getItem(key: key.publicKey, now: now)
        for o in out {
            let t = try #require(DHTItemLookupTests.transaction(of: o.bytes))
            let i = try #require(fakes.firstIndex(of: o.to))
            var r = KRPCResponse(id: ids[i], nodes: [], token: Array("tok".utf8))
            r.publicKey = key.publicKey.bytes
            // Node 0 lies: a value the signature is not over, or one past BEP 44's 1000 bytes.
            let lie: BValue = kind == "forged" ? .string("forged") : .bytes([UInt8](repeating: 0x61, count: 1_100))
            r.value = i == 0 ? lie : real.value
            r.seq = i == 0 ? 99 : real.seq
            r.signature = real.signature
            now += 0.01
            _ = core.receive(KRPCMessage.response(t, r).encoded(), from: o.to, now: now)
        }
        let events = core.drainEvents()
        let refused = events.compactMap { e -> (NodeID, Endpoint, String)? in
            if case .itemRejected(_, let target, let from, let reason) = e { (target, from, reason) } else { nil }
        }
        #expect(refused.count == 1)
        #expect(refused.first?.0 == target && refused.first?.1 == fakes[0])
        #expect(refused.first?.2.contains("seq 99") == true)
        #expect(refused.first?.2.contains(kind == "forged" ? "signature" : "1000") == true, "\(refused.first?.2 ?? "")")
        let best = events.compactMap { e -> DHTItem?? in if case .itemLookupDone(_, let item, _, _, _) = e { item } else { nil } }
        #expect(best == [.mutable(real)], "the valid item still wins")
    }
}
