import Bencode

/// The tracker side of HTTP announces: the bencoded body answered (what `HTTPTracker.response`
/// reads on the client side).
extension HTTPTracker {
    /// `interval`, `min interval`, `complete` (seeders), `incomplete` (leechers) and the peers:
    /// compact (BEP 23), IPv4 peers as 6-byte entries in `peers` and IPv6 ones as 18-byte
    /// entries in `peers6` (BEP 7); otherwise one `peers` list of `ip`/`port` dictionaries
    /// holding both families (BEP 3, without peer ids).
    public static func body(_ r: AnnounceResponse, compact: Bool) -> [UInt8] {
        var d = BDictionary()
        d["interval"] = .integer(Int64(r.interval))
        if let m = r.minInterval { d["min interval"] = .integer(Int64(m)) }
        d["complete"] = .integer(Int64(r.seeders ?? 0))
        d["incomplete"] = .integer(Int64(r.leechers ?? 0))
        if compact {
            var v4: [UInt8] = [], v6: [UInt8] = []
            for p in r.peers {
                let entry = p.ip + [UInt8(p.port >> 8), UInt8(p.port & 0xFF)]
                if p.ip.count == 4 { v4 += entry } else { v6 += entry }
            }
            d["peers"] = .bytes(v4)
            if !v6.isEmpty { d["peers6"] = .bytes(v6) }
        } else {
            d["peers"] = .list(r.peers.map { .dictionary(BDictionary([("ip", .string($0.host)), ("port", .integer(Int64($0.port)))])) })
        }
        if let w = r.warning { d["warning message"] = .string(w) }
        return BValue.dictionary(d).encoded()
    }

    /// A refusal: `failure reason` and nothing else (BEP 3).
    public static func failureBody(_ reason: String) -> [UInt8] {
        BValue.dictionary(BDictionary([("failure reason", .string(text(Array(reason.utf8))))])).encoded()
    }
}
