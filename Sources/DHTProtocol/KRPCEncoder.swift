import Bencode

extension KRPCMessage {
    /// Canonical bencoding (keys in raw byte order, via `BDictionary`). False flags and
    /// absent optionals are left out, so a decoded message that spelled out
    /// `implied_port: 0` re-encodes a few bytes shorter. Keeping the result within a
    /// datagram (BEP 5 suggests ≤ 1024 bytes) is the caller's job: it chooses how many
    /// nodes and values to include.
    public func encoded() -> [UInt8] {
        var d = BDictionary()
        d["t"] = .bytes(transactionID)
        if let v = version { d["v"] = .bytes(v) }
        if readOnly { d["ro"] = .integer(1) }
        if let ip = requesterAddress { d["ip"] = .bytes(ip.compact) }
        switch body {
        case .query(let q):
            d["y"] = .string("q")
            d["q"] = .bytes(q.method.name)
            d["a"] = .dictionary(q.encodedArguments())
        case .response(let r):
            d["y"] = .string("r")
            d["r"] = .dictionary(r.encodedValues())
        case .error(let e):
            d["y"] = .string("e")
            d["e"] = .list([.integer(e.code.rawValue), .string(e.message)])
        }
        return BValue.dictionary(d).encoded()
    }
}

extension KRPCQuery {
    fileprivate func encodedArguments() -> BDictionary {
        var a = BDictionary()
        a["id"] = .bytes(sender.bytes)
        switch arguments {
        case .ping:
            break
        case .findNode(let f):
            a["target"] = .bytes(f.target.bytes)
            encodeWant(f.want, into: &a)
        case .getPeers(let g):
            a["info_hash"] = .bytes(g.infoHash.bytes)
            encodeWant(g.want, into: &a)
            if g.noSeed { a["noseed"] = .integer(1) }
            if g.scrape { a["scrape"] = .integer(1) }
        case .announcePeer(let p):
            a["info_hash"] = .bytes(p.infoHash.bytes)
            a["port"] = .integer(Int64(p.port))
            a["token"] = .bytes(p.token)
            if p.impliedPort { a["implied_port"] = .integer(1) }
            if p.seed { a["seed"] = .integer(1) }
        case .get(let g):
            a["target"] = .bytes(g.target.bytes)
            if let seq = g.seq { a["seq"] = .integer(seq) }
            encodeWant(g.want, into: &a)
        case .put(let p):
            a["token"] = .bytes(p.token)
            a["v"] = p.value
            if let m = p.mutable {
                a["k"] = .bytes(m.publicKey)
                a["sig"] = .bytes(m.signature)
                a["seq"] = .integer(m.seq)
                if !m.salt.isEmpty { a["salt"] = .bytes(m.salt) }
                if let cas = m.cas { a["cas"] = .integer(cas) }
            }
        }
        return a
    }

    private func encodeWant(_ want: WantedFamilies, into a: inout BDictionary) {
        guard !want.isEmpty else { return }
        var l: [BValue] = []
        if want.contains(.n4) { l.append(.string("n4")) }
        if want.contains(.n6) { l.append(.string("n6")) }
        a["want"] = .list(l)
    }
}

extension KRPCResponse {
    fileprivate func encodedValues() -> BDictionary {
        var r = BDictionary()
        r["id"] = .bytes(id.bytes)
        if let n = nodes { r["nodes"] = .bytes(Self.compact(n, family: .ipv4)) }
        if let n = nodes6 { r["nodes6"] = .bytes(Self.compact(n, family: .ipv6)) }
        if let v = values { r["values"] = .list(v.map { .bytes($0.compact) }) }
        if let t = token { r["token"] = .bytes(t) }
        if let b = seedsBloomFilter { r["BFsd"] = .bytes(b) }
        if let b = peersBloomFilter { r["BFpe"] = .bytes(b) }
        if let v = value { r["v"] = v }
        if let k = publicKey { r["k"] = .bytes(k) }
        if let s = signature { r["sig"] = .bytes(s) }
        if let seq { r["seq"] = .integer(seq) }
        return r
    }

    /// Entries of the other family cannot be written in this key's fixed-size form; they
    /// are skipped rather than corrupting the list.
    private static func compact(_ nodes: [NodeInfo], family: AddressFamily) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(nodes.count * NodeInfo.compactSize(family))
        for n in nodes where n.endpoint.ip.family == family { out += n.compact }
        return out
    }
}
