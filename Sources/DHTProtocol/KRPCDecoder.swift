import Bencode

/// Bounds on what a KRPC datagram may be.
public enum KRPCLimits {
    /// Largest datagram read at all (an Ethernet MTU; BEP 5 asks senders for ≤ 1024).
    public static let maxDatagramSize = 1_500
    public static let maxTransactionIDLength = 16
    /// Nesting and item bounds for the bencode layer; a 1,500-byte datagram cannot hold
    /// more than 750 values anyway.
    static let bencode = BencodeLimits(maxInputSize: maxDatagramSize, maxDepth: 8, maxItems: 1_024)
}

extension KRPCMessage {
    /// Decodes one datagram. Strict: canonical bencoding only, every known key must have
    /// its type and length, unknown keys are ignored.
    ///
    /// Replies do not say which query they answer, so `expectedMethod` maps a transaction
    /// id to the method we sent under it, or nil if none is outstanding (the reply is
    /// then rejected). It is called at most once, and only for `r` and `e` messages.
    public init(decoding datagram: [UInt8], expectedMethod: (_ transactionID: [UInt8]) -> KRPCMethod?) throws(KRPCError) {
        guard datagram.count <= KRPCLimits.maxDatagramSize else {
            throw .datagramTooLarge(size: datagram.count, limit: KRPCLimits.maxDatagramSize)
        }
        let value: BValue
        do { value = try BencodeDecoder.decode(datagram, limits: KRPCLimits.bencode) } catch { throw .bencoding(error) }
        guard case .dictionary(let dict) = value else { throw .notADictionary(actual: value.typeName) }
        let top = Fields(dict, path: "")

        let t = try top.bytes("t")
        guard t.count <= KRPCLimits.maxTransactionIDLength else {
            throw .transactionIDTooLong(length: t.count, limit: KRPCLimits.maxTransactionIDLength)
        }
        let y = try top.bytes("y")
        let version = try top.optionalBytes("v")
        let readOnly = try top.flag("ro")
        let requester = try top.optionalEndpoint("ip")

        let body: Body
        switch y {
        case [UInt8(ascii: "q")]:
            body = .query(try KRPCMessage.query(top))
        case [UInt8(ascii: "r")]:
            guard let method = expectedMethod(t) else { throw .unsolicitedReply(transactionID: t) }
            body = .response(try KRPCMessage.response(top.dictionary("r"), answering: method))
        case [UInt8(ascii: "e")]:
            guard expectedMethod(t) != nil else { throw .unsolicitedReply(transactionID: t) }
            body = .error(try KRPCMessage.errorReply(top))
        default:
            throw .unknownMessageType(y)
        }
        self.init(transactionID: t, body: body, version: version, readOnly: readOnly, requesterAddress: requester)
    }

    /// After `init(decoding:)` threw: the transaction id to answer with an error reply
    /// (code `KRPCError.replyCode`), when the datagram is recognisably a query. nil means
    /// drop it silently (not bencoding, not a query, or no usable `t`).
    public static func queryTransactionID(in datagram: [UInt8]) -> [UInt8]? {
        guard datagram.count <= KRPCLimits.maxDatagramSize,
              let v = try? BencodeDecoder.decode(datagram, limits: KRPCLimits.bencode),
              let d = v.dictionary, d["y"]?.bytes == [UInt8(ascii: "q")],
              let t = d["t"]?.bytes, t.count <= KRPCLimits.maxTransactionIDLength else { return nil }
        return t
    }

    private static func query(_ top: Fields) throws(KRPCError) -> KRPCQuery {
        let q = try top.bytes("q")
        guard let method = KRPCMethod(name: q) else { throw .unknownMethod(q) }
        let a = try top.dictionary("a")
        let sender = try a.nodeID("id")
        switch method {
        case .ping:
            return KRPCQuery(sender: sender, arguments: .ping)
        case .findNode:
            return KRPCQuery(sender: sender, arguments: .findNode(.init(target: try a.nodeID("target"), want: try a.want())))
        case .getPeers:
            let g = KRPCQuery.GetPeers(infoHash: try a.nodeID("info_hash"), want: try a.want(),
                                       noSeed: try a.flag("noseed"), scrape: try a.flag("scrape"))
            return KRPCQuery(sender: sender, arguments: .getPeers(g))
        case .announcePeer:
            let infoHash = try a.nodeID("info_hash")
            let implied = try a.flag("implied_port")
            let port = try a.integer("port")
            // With implied_port the port argument is ignored, so 0 is tolerated there.
            guard (0...65535).contains(port), implied || port != 0 else { throw .valueOutOfRange(key: a.name("port"), value: port) }
            let p = KRPCQuery.AnnouncePeer(infoHash: infoHash, port: UInt16(port), impliedPort: implied,
                                           token: try a.bytes("token"), seed: try a.flag("seed"))
            return KRPCQuery(sender: sender, arguments: .announcePeer(p))
        case .get:
            let g = KRPCQuery.Get(target: try a.nodeID("target"), seq: try a.optionalInteger("seq"), want: try a.want())
            return KRPCQuery(sender: sender, arguments: .get(g))
        case .put:
            return KRPCQuery(sender: sender, arguments: .put(try put(a)))
        }
    }

    /// A put is mutable when it carries `k`; then `sig` and `seq` must come with it.
    private static func put(_ a: Fields) throws(KRPCError) -> KRPCQuery.Put {
        var p = KRPCQuery.Put(token: try a.bytes("token"), value: try a.value("v"))
        guard a.has("k") else { return p }
        p.mutable = KRPCQuery.MutableFields(
            publicKey: try a.bytes("k", length: 32), signature: try a.bytes("sig", length: 64), seq: try a.integer("seq"),
            salt: try a.optionalBytes("salt") ?? [], cas: try a.optionalInteger("cas"))
        return p
    }

    private static func response(_ r: Fields, answering method: KRPCMethod) throws(KRPCError) -> KRPCResponse {
        var response = KRPCResponse(id: try r.nodeID("id"))
        response.nodes = try r.compactNodes("nodes", family: .ipv4)
        response.nodes6 = try r.compactNodes("nodes6", family: .ipv6)
        response.values = try r.peers("values")
        response.token = try r.optionalBytes("token")
        response.seedsBloomFilter = try r.optionalBytes("BFsd", length: KRPCResponse.bloomFilterSize)
        response.peersBloomFilter = try r.optionalBytes("BFpe", length: KRPCResponse.bloomFilterSize)
        if method == .get {
            response.value = r.has("v") ? try r.value("v") : nil
            response.publicKey = try r.optionalBytes("k", length: 32)
            response.signature = try r.optionalBytes("sig", length: 64)
            response.seq = try r.optionalInteger("seq")
        }
        let hasNodes = response.nodes != nil || response.nodes6 != nil
        switch method {
        case .ping, .announcePeer, .put:
            break
        case .get:
            // Without the item: nodes to ask next, or the bare `seq` of an item the asker has.
            guard hasNodes || response.value != nil || response.seq != nil else { throw .missingAnswer(method: method) }
        case .findNode:
            guard hasNodes else { throw .missingAnswer(method: method) }
        case .getPeers:
            guard response.token != nil else { throw .missingKey(r.name("token")) }
            guard hasNodes || response.values != nil else { throw .missingAnswer(method: method) }
        }
        return response
    }

    private static func errorReply(_ top: Fields) throws(KRPCError) -> KRPCErrorReply {
        let e = try top.list("e")
        guard e.count == 2 else { throw .wrongLength(key: "e", expected: "a list of 2 elements", actual: e.count) }
        guard case .integer(let code) = e[0] else { throw .wrongType(key: "e[0]", expected: "integer", actual: e[0].typeName) }
        guard case .bytes(let message) = e[1] else { throw .wrongType(key: "e[1]", expected: "string", actual: e[1].typeName) }
        return KRPCErrorReply(code: KRPCErrorCode(rawValue: code), message: String(decoding: message, as: UTF8.self))
    }
}

/// Typed access to one dictionary of a message, naming keys by path in errors.
private struct Fields {
    let dict: BDictionary
    let path: String

    init(_ dict: BDictionary, path: String) {
        self.dict = dict
        self.path = path
    }

    func name(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    func has(_ key: String) -> Bool { dict[key] != nil }

    func value(_ key: String) throws(KRPCError) -> BValue {
        guard let v = dict[key] else { throw .missingKey(name(key)) }
        return v
    }

    func bytes(_ key: String) throws(KRPCError) -> [UInt8] {
        let v = try value(key)
        guard case .bytes(let b) = v else { throw .wrongType(key: name(key), expected: "string", actual: v.typeName) }
        return b
    }

    func optionalBytes(_ key: String) throws(KRPCError) -> [UInt8]? {
        dict[key] == nil ? nil : try bytes(key)
    }

    func bytes(_ key: String, length: Int) throws(KRPCError) -> [UInt8] {
        let b = try bytes(key)
        guard b.count == length else { throw .wrongLength(key: name(key), expected: String(length), actual: b.count) }
        return b
    }

    func optionalInteger(_ key: String) throws(KRPCError) -> Int64? {
        dict[key] == nil ? nil : try integer(key)
    }

    func optionalBytes(_ key: String, length: Int) throws(KRPCError) -> [UInt8]? {
        guard let b = try optionalBytes(key) else { return nil }
        guard b.count == length else { throw .wrongLength(key: name(key), expected: String(length), actual: b.count) }
        return b
    }

    func integer(_ key: String) throws(KRPCError) -> Int64 {
        let v = try value(key)
        guard case .integer(let i) = v else { throw .wrongType(key: name(key), expected: "integer", actual: v.typeName) }
        return i
    }

    /// An optional 0/1 integer; absent is false.
    func flag(_ key: String) throws(KRPCError) -> Bool {
        guard dict[key] != nil else { return false }
        let i = try integer(key)
        guard i == 0 || i == 1 else { throw .valueOutOfRange(key: name(key), value: i) }
        return i == 1
    }

    func list(_ key: String) throws(KRPCError) -> [BValue] {
        let v = try value(key)
        guard case .list(let l) = v else { throw .wrongType(key: name(key), expected: "list", actual: v.typeName) }
        return l
    }

    func dictionary(_ key: String) throws(KRPCError) -> Fields {
        let v = try value(key)
        guard case .dictionary(let d) = v else { throw .wrongType(key: name(key), expected: "dictionary", actual: v.typeName) }
        return Fields(d, path: name(key))
    }

    func nodeID(_ key: String) throws(KRPCError) -> NodeID {
        let b = try bytes(key)
        guard let id = NodeID(bytes: b) else { throw .wrongLength(key: name(key), expected: "20", actual: b.count) }
        return id
    }

    func optionalEndpoint(_ key: String) throws(KRPCError) -> Endpoint? {
        guard let b = try optionalBytes(key) else { return nil }
        guard let e = Endpoint(compact: b) else { throw .wrongLength(key: name(key), expected: "6 or 18", actual: b.count) }
        return e
    }

    /// BEP 32 `want`: a list of strings; names other than n4/n6 are ignored.
    func want() throws(KRPCError) -> WantedFamilies {
        guard dict["want"] != nil else { return [] }
        var out: WantedFamilies = []
        for (i, item) in try list("want").enumerated() {
            guard case .bytes(let b) = item else { throw .wrongType(key: name("want[\(i)]"), expected: "string", actual: item.typeName) }
            if b == Array("n4".utf8) { out.insert(.n4) } else if b == Array("n6".utf8) { out.insert(.n6) }
        }
        return out
    }

    /// A string of concatenated compact node infos of one family.
    func compactNodes(_ key: String, family: AddressFamily) throws(KRPCError) -> [NodeInfo]? {
        guard let b = try optionalBytes(key) else { return nil }
        let size = NodeInfo.compactSize(family)
        guard b.count % size == 0 else { throw .wrongLength(key: name(key), expected: "a multiple of \(size)", actual: b.count) }
        return stride(from: 0, to: b.count, by: size).map { NodeInfo(compact: b[$0..<($0 + size)])! }
    }

    /// get_peers `values`: a list of 6- or 18-byte compact peers.
    func peers(_ key: String) throws(KRPCError) -> [Endpoint]? {
        guard dict[key] != nil else { return nil }
        var out: [Endpoint] = []
        for (i, item) in try list(key).enumerated() {
            guard case .bytes(let b) = item else { throw .wrongType(key: name("\(key)[\(i)]"), expected: "string", actual: item.typeName) }
            guard let e = Endpoint(compact: b) else { throw .wrongLength(key: name("\(key)[\(i)]"), expected: "6 or 18", actual: b.count) }
            out.append(e)
        }
        return out
    }
}
