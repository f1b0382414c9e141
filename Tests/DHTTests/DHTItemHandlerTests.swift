import Bencode
import DHTProtocol
import Signing
import Testing
@testable import DHT

/// One node answering BEP 44 get and put from one asker, datagram by datagram.
private struct Asker {
    var node = DHTNodeCore(id: NodeID.random(), now: 1_000)
    let me = Endpoint(ip: IPAddress("10.0.0.7")!, port: 6881)
    let myID = NodeID.random()
    var now: Double = 1_000
    var next: UInt16 = 0

    mutating func ask(_ arguments: KRPCQuery.Arguments, from source: Endpoint? = nil) -> KRPCMessage.Body? {
        next += 1
        let t = [UInt8(next >> 8), UInt8(next & 0xff)]
        now += 0.1
        let out = node.receive(KRPCMessage.query(t, KRPCQuery(sender: myID, arguments: arguments)).encoded(), from: source ?? me, now: now)
        guard out.count == 1, let m = try? KRPCMessage(decoding: out[0].bytes, expectedMethod: { _ in KRPCQuery(sender: myID, arguments: arguments).method }) else { return nil }
        return m.body
    }

    mutating func token() -> [UInt8] {
        guard case .response(let r)? = ask(.get(.init(target: NodeID.random()))) else { return [] }
        return r.token ?? []
    }

    /// A put; nil when it was stored, else the error code.
    mutating func put(_ value: BValue, _ fields: KRPCQuery.MutableFields?, token: [UInt8]? = nil) -> Int64? {
        let t = token ?? self.token()
        switch ask(.put(.init(token: t, value: value, mutable: fields))) {
        case .response?: return nil
        case .error(let e)?: return e.code.rawValue
        default: return -1
        }
    }

    mutating func get(_ target: NodeID, seq: Int64? = nil) -> KRPCResponse? {
        guard case .response(let r)? = ask(.get(.init(target: target, seq: seq))) else { return nil }
        return r
    }
}

private func signed(_ key: Ed25519PrivateKey, _ seq: Int64, _ text: String, salt: String = "", cas: Int64? = nil) throws -> KRPCQuery.MutableFields {
    KRPCQuery.MutableFields(try MutableItem(signing: .string(text), seq: seq, salt: Array(salt.utf8), with: key), cas: cas)
}

@Suite struct DHTItemHandlerTests {
    let key: Ed25519PrivateKey
    init() throws { key = try Ed25519PrivateKey.generate() }

    @Test func aPutMutableItemIsAnsweredByGetWithItsSignature() throws {
        var a = Asker()
        #expect(a.put(.string("one"), try signed(key, 1, "one", salt: "s")) == nil)
        let target = MutableItem.target(publicKey: key.publicKey, salt: Array("s".utf8))
        let got = a.get(target)
        let r = try #require(got)
        #expect(r.value == .string("one") && r.seq == 1 && r.publicKey == key.publicKey.bytes && r.token?.isEmpty == false)
        // The reader checks what it got.
        _ = try MutableItem(publicKey: Ed25519PublicKey(bytes: r.publicKey ?? []), salt: Array("s".utf8), seq: 1, value: .string("one"), signature: r.signature ?? [])
        // An asker that already has seq 1 gets only the number.
        let gotSame = a.get(target, seq: 1)
        let same = try #require(gotSame)
        #expect(same.seq == 1 && same.value == nil && same.signature == nil)
        let gotOlder = a.get(target, seq: 0)
        let older = try #require(gotOlder)
        #expect(older.value == .string("one"))
    }

    @Test func anImmutablePutIsStoredUnderTheHashOfItsValue() throws {
        var a = Asker()
        #expect(a.put(.string("Hello World!"), nil) == nil)
        let got = a.get(NodeID(hex: "e5f96f6f38320f0f33959cb4d3d656452117aadb")!)
        let r = try #require(got)
        #expect(r.value == .string("Hello World!") && r.seq == nil)
    }

    @Test func aGetForNothingGivesATokenAndNoValue() throws {
        var a = Asker()
        let got = a.get(NodeID.random())
        let r = try #require(got)
        #expect(r.value == nil && r.token?.count == TokenStore.tokenLength && r.nodes != nil)
    }

    @Test func refusals() throws {
        var a = Asker()
        // 203: a token not issued to this address.
        #expect(a.put(.string("x"), try signed(key, 1, "x"), token: Array("12345678".utf8)) == 203)
        let other = Endpoint(ip: IPAddress("10.0.0.8")!, port: 6881)
        var b = a
        let tokenForOther: [UInt8] = {
            guard case .response(let r)? = b.ask(.get(.init(target: NodeID.random())), from: other) else { return [] }
            return r.token ?? []
        }()
        #expect(a.put(.string("x"), try signed(key, 1, "x"), token: tokenForOther) == 203)
        // 205: a value over 1000 bytes.
        #expect(a.put(.bytes([UInt8](repeating: 0x61, count: 997)), nil) == 205)
        // 207: a salt over 64 bytes (signed properly; the size is what is wrong).
        var bigSalt = try signed(key, 1, "x")
        bigSalt.salt = [UInt8](repeating: 1, count: 65)
        #expect(a.put(.string("x"), bigSalt) == 207)
        // 206: a signature over something else.
        #expect(a.put(.string("forged"), try signed(key, 1, "x")) == 206)
        var wrongSeq = try signed(key, 1, "x")
        wrongSeq.seq = 2
        #expect(a.put(.string("x"), wrongSeq) == 206)
        var wrongKey = try signed(key, 1, "x")
        wrongKey.publicKey = try Ed25519PrivateKey.generate().publicKey.bytes
        #expect(a.put(.string("x"), wrongKey) == 206)
        #expect(a.node.storedItemCount == 0)

        // Then a stored item, and the refusals that depend on it.
        #expect(a.put(.string("five"), try signed(key, 5, "five")) == nil)
        #expect(a.put(.string("four"), try signed(key, 4, "four")) == 302)
        #expect(a.put(.string("other"), try signed(key, 5, "other")) == 302)
        #expect(a.put(.string("five"), try signed(key, 5, "five")) == nil)  // the same again refreshes
        #expect(a.put(.string("six"), try signed(key, 6, "six", cas: 4)) == 301)
        let target = MutableItem.target(publicKey: key.publicKey)
        #expect(a.get(target)?.value == .string("five"))
        #expect(a.put(.string("six"), try signed(key, 6, "six", cas: 5)) == nil)
        #expect(a.get(target)?.value == .string("six"))
    }

    /// The largest item travels whole although its reply is more than eight times the get.
    @Test func aFullSizeItemIsServed() throws {
        var a = Asker()
        let value = BValue.bytes([UInt8](repeating: 0x62, count: 996))
        let fields = KRPCQuery.MutableFields(try MutableItem(signing: value, seq: 1, salt: [UInt8](repeating: 7, count: 64), with: key))
        #expect(a.put(value, fields) == nil)
        let got = a.get(MutableItem.target(publicKey: key.publicKey, salt: [UInt8](repeating: 7, count: 64)))
        let r = try #require(got)
        #expect(r.value == value && r.signature?.count == 64)
    }

    @Test func itemsExpireAfterTwoHoursWithoutAPut() throws {
        var a = Asker()
        #expect(a.put(.string("one"), try signed(key, 1, "one")) == nil)
        a.now += 7_201
        _ = a.node.tick(now: a.now)
        #expect(a.node.storedItemCount == 0)
        let got = a.get(MutableItem.target(publicKey: key.publicKey))
        #expect(got != nil && got?.value == nil)
    }
}

/// Mutated puts and gets (a real token and signature, then bytes flipped, cut or repeated)
/// reach the node's handlers without a trap, and every reply fits one datagram.
@Suite struct DHTItemHandlerMutations {
    @Test func mutatedPutsNeverTrap() throws {
        var a = Asker()
        let key = try Ed25519PrivateKey.generate()
        var rng = SystemRandom()  // not the storage-less system generator: see SystemRandom
        for i in 0..<1_500 {
            let item = try MutableItem(signing: .list([.integer(Int64(i)), .string("v")]), seq: Int64(i), salt: i % 2 == 0 ? [] : [1, 2], with: key)
            let query = KRPCQuery(sender: a.myID, arguments: i % 3 == 0
                ? .get(.init(target: item.target, seq: Int64(i % 5)))
                : .put(.init(token: a.token(), value: item.value, mutable: .init(item, cas: i % 4 == 0 ? Int64(i - 1) : nil))))
            var wire = KRPCMessage.query([0, UInt8(i & 0xff)], query).encoded()
            let at = Int.random(in: 0..<wire.count, using: &rng)
            switch i % 3 {
            case 0: wire[at] = UInt8.random(in: 0...255, using: &rng)
            case 1: wire.removeSubrange(at..<min(wire.count, at + 3))
            default: wire.insert(contentsOf: wire[at..<min(wire.count, at + 5)], at: at)
            }
            a.now += 0.05
            for reply in a.node.receive(wire, from: a.me, now: a.now) {
                #expect(reply.bytes.count <= KRPCLimits.maxDatagramSize)
            }
        }
        #expect(a.node.storedItemCount <= 2)  // one key, two salts
    }
}
