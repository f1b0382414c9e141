import Testing
@testable import DHTProtocol

/// Hand-written bad datagrams, one fault each. `A`/`M` are 20-byte ids as bencoded strings.
private let A = "20:abcdefghij0123456789"
private let M = "20:mnopqrstuvwxyz123456"
private let aa = bytes("aa")

struct Malformed: Sendable, CustomTestStringConvertible {
    enum Expected: Sendable { case error(KRPCError), anyBencodingError }
    var name: String
    var wire: [UInt8]
    var asked: KRPCMethod?
    var expected: Expected
    var testDescription: String { name }

    init(_ name: String, _ text: String, asked: KRPCMethod? = nil, _ error: KRPCError) {
        self.init(name, bytes(text), asked: asked, .error(error))
    }

    init(_ name: String, _ wire: [UInt8], asked: KRPCMethod? = nil, _ expected: Expected) {
        self.name = name
        self.wire = wire
        self.asked = asked
        self.expected = expected
    }
}

private func announce(_ args: String) -> String { "d1:ad2:id\(A)\(args)e1:q13:announce_peer1:t2:aa1:y1:qe" }
private func reply(_ r: String) -> String { "d1:rd\(r)e1:t2:aa1:y1:re" }
private func errorReply(_ e: String) -> String { "d1:e\(e)1:t2:aa1:y1:ee" }

@Suite struct KRPCMalformed {
    static let envelope: [Malformed] = [
        Malformed("oversized", bytes("d1:ad2:id\(A)e1:q4:ping1:t2:aa1:v1437:") + [UInt8](repeating: 0x41, count: 1_437) + bytes("1:y1:qe"),
                  .error(.datagramTooLarge(size: 1_501, limit: 1_500))),
        Malformed("empty", [], .error(.bencoding(.unexpectedEnd(offset: 0)))),
        Malformed("integer at top level", "i1e", .notADictionary(actual: "integer")),
        Malformed("list at top level", "l1:ae", .notADictionary(actual: "list")),
        Malformed("string at top level", "2:aa", .notADictionary(actual: "string")),
        Malformed("unsorted keys", bytes("d1:q4:ping1:ad2:id\(A)e1:t2:aa1:y1:qe"), .anyBencodingError),
        Malformed("unsorted inner keys", bytes("d1:ad6:target\(M)2:id\(A)e1:q9:find_node1:t2:aa1:y1:qe"), .anyBencodingError),
        Malformed("duplicate key", bytes("d1:ad2:id\(A)e1:q4:ping1:q4:ping1:t2:aa1:y1:qe"), .anyBencodingError),
        Malformed("leading zero", bytes(announce("9:info_hash\(M)4:porti06881e5:token1:x")), .anyBencodingError),
        Malformed("negative zero", bytes("d1:ad2:id\(A)e1:q4:ping2:roi-0e1:t2:aa1:y1:qe"), .anyBencodingError),
        Malformed("string longer than the datagram", bytes("d1:ad2:id99:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"), .anyBencodingError),
        Malformed("nesting too deep", bytes("d1:ad2:id\(A)e1:q4:ping1:t2:aa1:y1:q1:z" + String(repeating: "l", count: 8) + String(repeating: "e", count: 9)),
                  .error(.bencoding(.depthExceeded(limit: 8)))),
        Malformed("no t", "d1:ad2:id\(A)e1:q4:ping1:y1:qe", .missingKey("t")),
        Malformed("t is an integer", "d1:ad2:id\(A)e1:q4:ping1:ti1e1:y1:qe", .wrongType(key: "t", expected: "string", actual: "integer")),
        Malformed("t of 17 bytes", "d1:ad2:id\(A)e1:q4:ping1:t17:aaaaaaaaaaaaaaaaa1:y1:qe", .transactionIDTooLong(length: 17, limit: 16)),
        Malformed("no y", "d1:ad2:id\(A)e1:q4:ping1:t2:aae", .missingKey("y")),
        Malformed("y is a list", "d1:ad2:id\(A)e1:q4:ping1:t2:aa1:yl1:qee", .wrongType(key: "y", expected: "string", actual: "list")),
        Malformed("y is x", "d1:ad2:id\(A)e1:q4:ping1:t2:aa1:y1:xe", .unknownMessageType(bytes("x"))),
        Malformed("y is qq", "d1:ad2:id\(A)e1:q4:ping1:t2:aa1:y2:qqe", .unknownMessageType(bytes("qq"))),
        Malformed("y is empty", "d1:ad2:id\(A)e1:q4:ping1:t2:aa1:y0:e", .unknownMessageType([])),
        Malformed("v is an integer", "d1:ad2:id\(A)e1:q4:ping1:t2:aa1:vi1e1:y1:qe", .wrongType(key: "v", expected: "string", actual: "integer")),
        Malformed("ro is 2", "d1:ad2:id\(A)e1:q4:ping2:roi2e1:t2:aa1:y1:qe", .valueOutOfRange(key: "ro", value: 2)),
        Malformed("ro is a string", "d1:ad2:id\(A)e1:q4:ping2:ro1:11:t2:aa1:y1:qe", .wrongType(key: "ro", expected: "integer", actual: "string")),
        Malformed("ip of 5 bytes", "d2:ip5:abcde1:rd2:id\(M)e1:t2:aa1:y1:re", asked: .ping,
                  .wrongLength(key: "ip", expected: "6 or 18", actual: 5)),
        Malformed("ip is an integer", "d1:ad2:id\(A)e2:ipi1e1:q4:ping1:t2:aa1:y1:qe", .wrongType(key: "ip", expected: "string", actual: "integer")),
    ]

    static let queries: [Malformed] = [
        Malformed("no q", "d1:ad2:id\(A)e1:t2:aa1:y1:qe", .missingKey("q")),
        Malformed("q is an integer", "d1:ad2:id\(A)e1:qi1e1:t2:aa1:y1:qe", .wrongType(key: "q", expected: "string", actual: "integer")),
        Malformed("unknown method", "d1:ad2:id\(A)e1:q5:bogus1:t2:aa1:y1:qe", .unknownMethod(bytes("bogus"))),
        Malformed("method name in another case", "d1:ad2:id\(A)e1:q4:PING1:t2:aa1:y1:qe", .unknownMethod(bytes("PING"))),
        Malformed("no a", "d1:q4:ping1:t2:aa1:y1:qe", .missingKey("a")),
        Malformed("a is a list", "d1:al2:ide1:q4:ping1:t2:aa1:y1:qe",
                  .wrongType(key: "a", expected: "dictionary", actual: "list")),
        Malformed("no a.id", "d1:ade1:q4:ping1:t2:aa1:y1:qe", .missingKey("a.id")),
        Malformed("a.id of 19 bytes", "d1:ad2:id19:abcdefghij012345678e1:q4:ping1:t2:aa1:y1:qe", .wrongLength(key: "a.id", expected: "20", actual: 19)),
        Malformed("a.id of 21 bytes", "d1:ad2:id21:abcdefghij0123456789Xe1:q4:ping1:t2:aa1:y1:qe", .wrongLength(key: "a.id", expected: "20", actual: 21)),
        Malformed("a.id is an integer", "d1:ad2:idi7ee1:q4:ping1:t2:aa1:y1:qe", .wrongType(key: "a.id", expected: "string", actual: "integer")),
        Malformed("find_node without target", "d1:ad2:id\(A)e1:q9:find_node1:t2:aa1:y1:qe", .missingKey("a.target")),
        Malformed("empty target", "d1:ad2:id\(A)6:target0:e1:q9:find_node1:t2:aa1:y1:qe", .wrongLength(key: "a.target", expected: "20", actual: 0)),
        Malformed("want is a string", "d1:ad2:id\(A)6:target\(M)4:want2:n4e1:q9:find_node1:t2:aa1:y1:qe",
                  .wrongType(key: "a.want", expected: "list", actual: "string")),
        Malformed("want holds an integer", "d1:ad2:id\(A)6:target\(M)4:wantli4eee1:q9:find_node1:t2:aa1:y1:qe",
                  .wrongType(key: "a.want[0]", expected: "string", actual: "integer")),
        Malformed("get_peers without info_hash", "d1:ad2:id\(A)e1:q9:get_peers1:t2:aa1:y1:qe", .missingKey("a.info_hash")),
        Malformed("info_hash of 32 bytes", "d1:ad2:id\(A)9:info_hash32:abcdefghij0123456789abcdefghij01e1:q9:get_peers1:t2:aa1:y1:qe",
                  .wrongLength(key: "a.info_hash", expected: "20", actual: 32)),
        Malformed("noseed is 2", "d1:ad2:id\(A)9:info_hash\(M)6:noseedi2ee1:q9:get_peers1:t2:aa1:y1:qe", .valueOutOfRange(key: "a.noseed", value: 2)),
        Malformed("scrape is a string", "d1:ad2:id\(A)9:info_hash\(M)6:scrape1:1e1:q9:get_peers1:t2:aa1:y1:qe",
                  .wrongType(key: "a.scrape", expected: "integer", actual: "string")),
        Malformed("announce without info_hash", announce("4:porti1e5:token1:x"), .missingKey("a.info_hash")),
        Malformed("announce without port", announce("9:info_hash\(M)5:token1:x"), .missingKey("a.port")),
        Malformed("port is a string", announce("9:info_hash\(M)4:port4:68815:token1:x"), .wrongType(key: "a.port", expected: "integer", actual: "string")),
        Malformed("port 0 without implied_port", announce("9:info_hash\(M)4:porti0e5:token1:x"), .valueOutOfRange(key: "a.port", value: 0)),
        Malformed("port 65536", announce("9:info_hash\(M)4:porti65536e5:token1:x"), .valueOutOfRange(key: "a.port", value: 65_536)),
        Malformed("port -1", announce("9:info_hash\(M)4:porti-1e5:token1:x"), .valueOutOfRange(key: "a.port", value: -1)),
        Malformed("port beyond Int64", bytes(announce("9:info_hash\(M)4:porti99999999999999999999e5:token1:x")), .anyBencodingError),
        Malformed("announce without token", announce("9:info_hash\(M)4:porti1e"), .missingKey("a.token")),
        Malformed("token is an integer", announce("9:info_hash\(M)4:porti1e5:tokeni1e"), .wrongType(key: "a.token", expected: "string", actual: "integer")),
        Malformed("implied_port is 2", announce("12:implied_porti2e9:info_hash\(M)4:porti1e5:token1:x"),
                  .valueOutOfRange(key: "a.implied_port", value: 2)),
        Malformed("seed is a list", announce("9:info_hash\(M)4:porti1e4:seedle5:token1:x"), .wrongType(key: "a.seed", expected: "integer", actual: "list")),
    ]

    static let replies: [Malformed] = [
        Malformed("reply to nothing we asked", reply("2:id\(M)"), .unsolicitedReply(transactionID: aa)),
        Malformed("error reply to nothing we asked", errorReply("li201e1:xe"), .unsolicitedReply(transactionID: aa)),
        Malformed("no r", "d1:t2:aa1:y1:re", asked: .ping, .missingKey("r")),
        Malformed("r is a string", "d1:r2:id1:t2:aa1:y1:re", asked: .ping, .wrongType(key: "r", expected: "dictionary", actual: "string")),
        Malformed("no r.id", reply(""), asked: .ping, .missingKey("r.id")),
        Malformed("r.id of 19 bytes", reply("2:id19:mnopqrstuvwxyz12345"), asked: .ping, .wrongLength(key: "r.id", expected: "20", actual: 19)),
        Malformed("find_node reply without nodes", reply("2:id\(M)5:token1:x"), asked: .findNode, .missingAnswer(method: .findNode)),
        Malformed("find_node reply with only values", reply("2:id\(M)6:valuesl6:abcdefe"), asked: .findNode, .missingAnswer(method: .findNode)),
        Malformed("nodes is a list", reply("2:id\(M)5:nodesle"), asked: .findNode, .wrongType(key: "r.nodes", expected: "string", actual: "list")),
        Malformed("nodes of 25 bytes", reply("2:id\(M)5:nodes25:abcdefghij0123456789abcde"), asked: .findNode,
                  .wrongLength(key: "r.nodes", expected: "a multiple of 26", actual: 25)),
        Malformed("nodes6 of 26 bytes", reply("2:id\(M)6:nodes626:abcdefghij0123456789abcdef"), asked: .findNode,
                  .wrongLength(key: "r.nodes6", expected: "a multiple of 38", actual: 26)),
        Malformed("get_peers reply without token", reply("2:id\(M)6:valuesl6:abcdefe"), asked: .getPeers, .missingKey("r.token")),
        Malformed("get_peers reply with only a token", reply("2:id\(M)5:token1:x"), asked: .getPeers, .missingAnswer(method: .getPeers)),
        Malformed("token is an integer", reply("2:id\(M)5:nodes0:5:tokeni1e"), asked: .getPeers,
                  .wrongType(key: "r.token", expected: "string", actual: "integer")),
        Malformed("values is a string", reply("2:id\(M)5:token1:x6:values6:abcdef"), asked: .getPeers,
                  .wrongType(key: "r.values", expected: "list", actual: "string")),
        Malformed("values holds an integer", reply("2:id\(M)5:token1:x6:valuesli1ee"), asked: .getPeers,
                  .wrongType(key: "r.values[0]", expected: "string", actual: "integer")),
        Malformed("peer of 5 bytes", reply("2:id\(M)5:token1:x6:valuesl6:abcdef5:abcdee"), asked: .getPeers,
                  .wrongLength(key: "r.values[1]", expected: "6 or 18", actual: 5)),
        Malformed("BFsd of 255 bytes", bytes("d1:rd4:BFsd255:") + [UInt8](repeating: 1, count: 255) + bytes("2:id\(M)5:token1:x6:valueslee1:t2:aa1:y1:re"),
                  asked: .getPeers, .error(.wrongLength(key: "r.BFsd", expected: "256", actual: 255))),
        Malformed("no e", "d1:t2:aa1:y1:ee", asked: .ping, .missingKey("e")),
        Malformed("e is a dictionary", errorReply("de"), asked: .ping, .wrongType(key: "e", expected: "list", actual: "dictionary")),
        Malformed("e with one element", errorReply("li201ee"), asked: .ping, .wrongLength(key: "e", expected: "a list of 2 elements", actual: 1)),
        Malformed("e with three elements", errorReply("li201e1:x1:ye"), asked: .ping, .wrongLength(key: "e", expected: "a list of 2 elements", actual: 3)),
        Malformed("e code is a string", errorReply("l3:2011:xe"), asked: .ping, .wrongType(key: "e[0]", expected: "integer", actual: "string")),
        Malformed("e message is an integer", errorReply("li201ei1ee"), asked: .ping, .wrongType(key: "e[1]", expected: "string", actual: "integer")),
    ]

    @Test(arguments: envelope + queries + replies)
    func isRejected(_ c: Malformed) {
        let asked = c.asked
        do {
            let m = try KRPCMessage(decoding: c.wire, expectedMethod: { t in t == aa ? asked : nil })
            Issue.record("decoded to \(m)")
        } catch {
            switch c.expected {
            case .error(let e): #expect(error == e, "\(error)")
            case .anyBencodingError:
                guard case .bencoding = error else { Issue.record("expected a bencoding error, got \(error)"); return }
            }
            #expect(!error.description.isEmpty)
        }
    }

    @Test func aBadQueryIsAnsweredWithItsTransactionIDAndCode() throws {
        let unknown = bytes("d1:ad2:id\(A)e1:q5:bogus1:t2:xy1:y1:qe")
        do {
            _ = try KRPCMessage(decoding: unknown, expectedMethod: { _ in nil })
            Issue.record("decoded")
        } catch {
            #expect(error.replyCode == .methodUnknown)
            #expect(KRPCMessage.queryTransactionID(in: unknown) == bytes("xy"))
        }
        let badPort = bytes(announce("9:info_hash\(M)4:porti0e5:token1:x"))
        do {
            _ = try KRPCMessage(decoding: badPort, expectedMethod: { _ in nil })
            Issue.record("decoded")
        } catch {
            #expect(error.replyCode == .protocolError)
            #expect(KRPCMessage.queryTransactionID(in: badPort) == aa)
        }
    }

    @Test func repliesAndGarbageAreNeverAnswered() {
        #expect(KRPCMessage.queryTransactionID(in: bytes(reply("2:id\(M)"))) == nil)
        #expect(KRPCMessage.queryTransactionID(in: bytes(errorReply("li201e1:xe"))) == nil)
        #expect(KRPCMessage.queryTransactionID(in: bytes("d1:q4:ping1:ad2:id\(A)e1:t2:aa1:y1:qe")) == nil)  // not canonical
        #expect(KRPCMessage.queryTransactionID(in: bytes("d1:ad2:id\(A)e1:q4:ping1:t17:aaaaaaaaaaaaaaaaa1:y1:qe")) == nil)
        #expect(KRPCMessage.queryTransactionID(in: [0x41, 0x02, 0x00]) == nil)  // a uTP SYN on the shared port
    }

    @Test func theLookupIsConsultedOnlyForReplies() throws {
        var asked: [[UInt8]] = []
        _ = try KRPCMessage(decoding: bytes("d1:ad2:id\(A)e1:q4:ping1:t2:aa1:y1:qe"), expectedMethod: { asked.append($0); return nil })
        #expect(asked.isEmpty)
        _ = try KRPCMessage(decoding: bytes(reply("2:id\(M)")), expectedMethod: { asked.append($0); return .ping })
        #expect(asked == [aa])
    }
}
