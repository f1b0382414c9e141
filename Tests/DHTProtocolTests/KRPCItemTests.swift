import Bencode
import Hashing
import Testing
@testable import DHTProtocol

/// BEP 44's get and put on the wire: byte-exact messages written out by hand, and one
/// fault per malformed case.
private let A = "20:abcdefghij0123456789"
private let M = "20:mnopqrstuvwxyz123456"
private let idA = NodeID(bytes: bytes("abcdefghij0123456789"))!
private let idM = NodeID(bytes: bytes("mnopqrstuvwxyz123456"))!
private let aa = bytes("aa")
private let k = String(repeating: "K", count: 32)
private let sig = String(repeating: "S", count: 64)

private func decode(_ text: String, asked method: KRPCMethod? = nil) throws(KRPCError) -> KRPCMessage {
    try KRPCMessage(decoding: bytes(text), expectedMethod: { t in t == aa ? method : nil })
}

@Suite struct KRPCItemMessages {
    static let vectors: [(String, KRPCMethod?, KRPCMessage)] = [
        ("d1:ad2:id\(A)6:target\(M)e1:q3:get1:t2:aa1:y1:qe", nil,
         .query(aa, KRPCQuery(sender: idA, arguments: .get(.init(target: idM))))),
        ("d1:ad2:id\(A)3:seqi4e6:target\(M)e1:q3:get1:t2:aa1:y1:qe", nil,
         .query(aa, KRPCQuery(sender: idA, arguments: .get(.init(target: idM, seq: 4))))),
        ("d1:ad2:id\(A)5:token1:x1:v12:Hello World!e1:q3:put1:t2:aa1:y1:qe", nil,
         .query(aa, KRPCQuery(sender: idA, arguments: .put(.init(token: bytes("x"), value: .string("Hello World!")))))),
        ("d1:ad3:casi3e2:id\(A)1:k32:\(k)4:salt6:foobar3:seqi4e3:sig64:\(sig)5:token1:x1:vd2:ih1:zee1:q3:put1:t2:aa1:y1:qe", nil,
         .query(aa, KRPCQuery(sender: idA, arguments: .put(.init(
             token: bytes("x"), value: .dictionary(BDictionary([("ih", .string("z"))])),
             mutable: .init(publicKey: bytes(k), signature: bytes(sig), seq: 4, salt: bytes("foobar"), cas: 3)))))),
        ("d1:rd2:id\(M)1:k32:\(k)5:nodes0:3:seqi9e3:sig64:\(sig)5:token1:x1:vli1ei2eee1:t2:aa1:y1:re", .get,
         .response(aa, {
             var r = KRPCResponse(id: idM, nodes: [], token: bytes("x"))
             r.value = .list([.integer(1), .integer(2)])
             r.publicKey = bytes(k)
             r.signature = bytes(sig)
             r.seq = 9
             return r
         }())),
        // An asker that has seq 9 already may get the number alone.
        ("d1:rd2:id\(M)3:seqi9e5:token1:xe1:t2:aa1:y1:re", .get,
         .response(aa, { var r = KRPCResponse(id: idM, token: bytes("x")); r.seq = 9; return r }())),
        ("d1:rd2:id\(M)e1:t2:aa1:y1:re", .put, .response(aa, KRPCResponse(id: idM))),
    ]

    @Test(arguments: 0..<vectors.count)
    func decodesAndEncodesByteExactly(_ i: Int) throws {
        let (wire, asked, message) = Self.vectors[i]
        #expect(try decode(wire, asked: asked) == message)
        #expect(message.encoded() == bytes(wire))
    }

    @Test func anEmptySaltIsNoSalt() throws {
        let m = try decode("d1:ad2:id\(A)1:k32:\(k)4:salt0:3:seqi4e3:sig64:\(sig)5:token1:x1:vi1ee1:q3:put1:t2:aa1:y1:qe")
        guard case .query(let q) = m.body, case .put(let p) = q.arguments else { Issue.record("not a put"); return }
        #expect(p.mutable?.salt == [])
        #expect(!m.encoded().contains(bytes("4:salt")))
    }

    @Test func getRepliesLeaveOtherMethodsKeysAlone() throws {
        // A `v` in a find_node reply is not read (and a get's `v` is any value).
        let m = try decode("d1:rd2:id\(M)5:nodes0:1:vi1ee1:t2:aa1:y1:re", asked: .findNode)
        guard case .response(let r) = m.body else { Issue.record("not a response"); return }
        #expect(r.value == nil)
    }

    static let malformed: [(String, String, KRPCMethod?, KRPCError)] = [
        ("get without target", "d1:ad2:id\(A)e1:q3:get1:t2:aa1:y1:qe", nil, .missingKey("a.target")),
        ("get target of 32 bytes", "d1:ad2:id\(A)6:target32:\(String(repeating: "t", count: 32))e1:q3:get1:t2:aa1:y1:qe", nil,
         .wrongLength(key: "a.target", expected: "20", actual: 32)),
        ("get seq is a string", "d1:ad2:id\(A)3:seq1:16:target\(M)e1:q3:get1:t2:aa1:y1:qe", nil,
         .wrongType(key: "a.seq", expected: "integer", actual: "string")),
        ("put without token", "d1:ad2:id\(A)1:vi1ee1:q3:put1:t2:aa1:y1:qe", nil, .missingKey("a.token")),
        ("put without v", "d1:ad2:id\(A)5:token1:xe1:q3:put1:t2:aa1:y1:qe", nil, .missingKey("a.v")),
        ("mutable put without sig", "d1:ad2:id\(A)1:k32:\(k)3:seqi1e5:token1:x1:vi1ee1:q3:put1:t2:aa1:y1:qe", nil, .missingKey("a.sig")),
        ("mutable put without seq", "d1:ad2:id\(A)1:k32:\(k)3:sig64:\(sig)5:token1:x1:vi1ee1:q3:put1:t2:aa1:y1:qe", nil, .missingKey("a.seq")),
        ("k of 31 bytes", "d1:ad2:id\(A)1:k31:\(k.dropLast())3:seqi1e3:sig64:\(sig)5:token1:x1:vi1ee1:q3:put1:t2:aa1:y1:qe", nil,
         .wrongLength(key: "a.k", expected: "32", actual: 31)),
        ("sig of 63 bytes", "d1:ad2:id\(A)1:k32:\(k)3:seqi1e3:sig63:\(sig.dropLast())5:token1:x1:vi1ee1:q3:put1:t2:aa1:y1:qe", nil,
         .wrongLength(key: "a.sig", expected: "64", actual: 63)),
        ("seq is a string", "d1:ad2:id\(A)1:k32:\(k)3:seq1:13:sig64:\(sig)5:token1:x1:vi1ee1:q3:put1:t2:aa1:y1:qe", nil,
         .wrongType(key: "a.seq", expected: "integer", actual: "string")),
        ("salt is an integer", "d1:ad2:id\(A)1:k32:\(k)4:salti1e3:seqi1e3:sig64:\(sig)5:token1:x1:vi1ee1:q3:put1:t2:aa1:y1:qe", nil,
         .wrongType(key: "a.salt", expected: "string", actual: "integer")),
        ("cas is a string", "d1:ad3:cas1:12:id\(A)1:k32:\(k)3:seqi1e3:sig64:\(sig)5:token1:x1:vi1ee1:q3:put1:t2:aa1:y1:qe", nil,
         .wrongType(key: "a.cas", expected: "integer", actual: "string")),
        ("get reply with nothing", "d1:rd2:id\(M)5:token1:xe1:t2:aa1:y1:re", .get, .missingAnswer(method: .get)),
        ("get reply k of 33 bytes", "d1:rd2:id\(M)1:k33:\(k)K5:nodes0:e1:t2:aa1:y1:re", .get, .wrongLength(key: "r.k", expected: "32", actual: 33)),
        ("get reply sig is a list", "d1:rd2:id\(M)5:nodes0:3:siglee1:t2:aa1:y1:re", .get, .wrongType(key: "r.sig", expected: "string", actual: "list")),
        ("get reply seq is a string", "d1:rd2:id\(M)5:nodes0:3:seq1:1e1:t2:aa1:y1:re", .get, .wrongType(key: "r.seq", expected: "integer", actual: "string")),
    ]

    @Test(arguments: 0..<malformed.count)
    func isRejected(_ i: Int) {
        let (name, wire, asked, expected) = Self.malformed[i]
        do {
            let m = try decode(wire, asked: asked)
            Issue.record("\(name): decoded to \(m)")
        } catch {
            #expect(error == expected, "\(name): \(error)")
            #expect(error.replyCode == .protocolError)
        }
    }

    /// The largest put there is (a 1000-byte value, 64-byte salt, key, signature, cas,
    /// 16-byte t, token) fits the 1,500-byte datagram the decoder reads.
    @Test func theLargestPutFitsOneDatagram() throws {
        let p = KRPCQuery.Put(token: [UInt8](repeating: 1, count: 20), value: .bytes([UInt8](repeating: 0x61, count: 996)),
                              mutable: .init(publicKey: bytes(k), signature: bytes(sig), seq: .max, salt: [UInt8](repeating: 2, count: 64), cas: .max))
        let m = KRPCMessage.query([UInt8](repeating: 3, count: 16), KRPCQuery(sender: idA, arguments: .put(p)))
        let wire = m.encoded()
        #expect(wire.count <= KRPCLimits.maxDatagramSize)
        #expect(try KRPCMessage(decoding: wire, expectedMethod: { _ in nil }) == m)
    }
}

/// Mutated get/put datagrams (bytes flipped, cut, repeated) are decoded or refused, never a
/// trap; whatever decodes re-encodes to a datagram that decodes to the same message.
@Suite struct KRPCItemMutations {
    @Test func mutatedItemMessagesNeverTrap() throws {
        var rng = SeededGenerator(seed: 44)
        let seeds = KRPCItemMessages.vectors.map { bytes($0.0) }
        var decoded = 0
        for i in 0..<4_000 {
            var wire = seeds[i % seeds.count]
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let at = Int.random(in: 0..<wire.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: wire[at] = UInt8.random(in: 0...255, using: &rng)
                case 1: wire[at] = [UInt8(ascii: "0"), UInt8(ascii: "9"), UInt8(ascii: "e"), UInt8(ascii: "d"), UInt8(ascii: "l"), UInt8(ascii: ":")][Int.random(in: 0..<6, using: &rng)]
                case 2: wire.removeSubrange(at..<min(wire.count, at + Int.random(in: 1...8, using: &rng)))
                default: wire.insert(contentsOf: wire[at..<min(wire.count, at + 8)], at: at)
                }
                if wire.isEmpty { wire = [0x64] }
            }
            let asked: KRPCMethod = i % 2 == 0 ? .get : .put
            guard let m = try? KRPCMessage(decoding: wire, expectedMethod: { _ in asked }) else { continue }
            decoded += 1
            #expect(try KRPCMessage(decoding: m.encoded(), expectedMethod: { _ in asked }) == m)
        }
        #expect(decoded > 0)
    }
}
