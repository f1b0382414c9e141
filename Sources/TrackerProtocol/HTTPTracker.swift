import Bencode

/// HTTP trackers (BEP 3, compact peers BEP 23, IPv6 peers BEP 7): the announce URL, and
/// the response body read into an `AnnounceResponse`. No I/O here.
public enum HTTPTracker {
    /// The announce URL for `announce` on the tracker at `base` (which may already carry
    /// a query: parameters are appended with `&`).
    public static func url(_ base: String, _ announce: Announce, trackerID: [UInt8]? = nil) -> String {
        var q = [
            "info_hash=" + percentEncoded(announce.infoHash),
            "peer_id=" + percentEncoded(announce.peerID),
            "port=\(announce.port)",
            "uploaded=\(announce.uploaded)",
            "downloaded=\(announce.downloaded)",
            "left=\(announce.left)",
            "compact=1",
            "numwant=\(announce.numWant)",
            "key=" + String(announce.key, radix: 16),
        ]
        if announce.event != .none { q.append("event=" + announce.event.rawValue) }
        if let trackerID { q.append("trackerid=" + percentEncoded(trackerID)) }
        let separator = base.contains("?") ? "&" : "?"
        return base + separator + q.joined(separator: "&")
    }

    /// RFC 3986 percent-encoding of raw bytes, leaving only unreserved characters as they are.
    public static func percentEncoded(_ bytes: [UInt8]) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 3)
        for b in bytes {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(b)
            default:
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Reads a response body. A `failure reason` becomes `TrackerError.failure`; peers come
    /// from a compact `peers` string, a list of dictionaries, and `peers6`; at most
    /// `TrackerLimits.maxPeers` are kept.
    public static func response(_ body: [UInt8]) throws(TrackerError) -> AnnounceResponse {
        guard body.count <= TrackerLimits.maxResponseSize else { throw .malformed("the body is over \(TrackerLimits.maxResponseSize) bytes") }
        let value: BValue
        do {
            value = try BencodeDecoder.decode(body, limits: BencodeLimits(maxInputSize: TrackerLimits.maxResponseSize, maxDepth: 8, maxItems: 8_192))
        } catch {
            throw .malformed("the body is not bencoded: \(error)")
        }
        guard let d = value.dictionary else { throw .malformed("the body is a \(value.typeName), not a dictionary") }
        if let failure = d["failure reason"] {
            throw .failure(text(failure.bytes ?? Array("(no text)".utf8)))
        }
        guard let interval = d["interval"]?.integer else { throw .malformed("no interval") }
        var peers: [TrackerPeer] = []
        switch d["peers"] {
        case .bytes(let b)?:
            peers = try TrackerPeer.compact(b, width: 6)
        case .list(let entries)?:
            for e in entries.prefix(TrackerLimits.maxPeers) {
                guard let p = e.dictionary, let host = p["ip"]?.utf8String, let port = p["port"]?.integer,
                      let ip = parseIP(host), let peer = TrackerPeer(ip: ip, port: UInt16(clamping: port)), (1...65535).contains(port)
                else { continue }
                peers.append(peer)
            }
        case nil:
            break
        case let other?:
            throw .malformed("peers is a \(other.typeName)")
        }
        if let p6 = d["peers6"] {
            guard let b = p6.bytes else { throw .malformed("peers6 is a \(p6.typeName)") }
            peers += try TrackerPeer.compact(b, width: 18)
        }
        return AnnounceResponse(
            interval: clampedInterval(interval),
            minInterval: d["min interval"]?.integer.map(clampedInterval),
            seeders: d["complete"]?.integer.map { Int(clamping: max(0, $0)) },
            leechers: d["incomplete"]?.integer.map { Int(clamping: max(0, $0)) },
            peers: Array(peers.prefix(TrackerLimits.maxPeers)),
            warning: d["warning message"]?.bytes.map(text),
            trackerID: d["tracker id"]?.bytes.flatMap { $0.count <= 64 ? $0 : nil })
    }

    static func clampedInterval(_ seconds: Int64) -> Int {
        Int(min(max(seconds, Int64(TrackerLimits.intervalRange.lowerBound)), Int64(TrackerLimits.intervalRange.upperBound)))
    }

    /// A tracker's text, cut to a readable length, with control characters replaced.
    static func text(_ bytes: [UInt8]) -> String {
        String(decoding: bytes.prefix(TrackerLimits.maxMessageLength), as: UTF8.self)
            .map { $0.isASCII && ($0.asciiValue! < 32 || $0.asciiValue! == 127) ? "?" : String($0) }.joined()
    }

    /// Dotted IPv4 or textual IPv6 (as `peers` dictionaries give them) to bytes.
    static func parseIP(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4 {
            let bytes = parts.compactMap { $0.count <= 3 ? UInt8($0) : nil }
            return bytes.count == 4 ? bytes : nil
        }
        guard text.contains(":"), text.utf8.count <= 45 else { return nil }
        let u = Array(text.utf8)
        let cuts = u.indices.dropLast().filter { u[$0] == 58 && u[$0 + 1] == 58 }
        guard cuts.count <= 1 else { return nil }
        let halves = cuts.first.map { [String(decoding: u[..<$0], as: UTF8.self), String(decoding: u[($0 + 2)...], as: UTF8.self)] } ?? [text]
        func groups(_ s: String) -> [UInt16]? {
            s.isEmpty ? [] : s.split(separator: ":", omittingEmptySubsequences: false).map { $0.count <= 4 ? UInt16($0, radix: 16) : nil }
                .reduce(into: [UInt16]?([])) { acc, g in if let g { acc?.append(g) } else { acc = nil } }
        }
        guard let head = groups(halves[0]) else { return nil }
        let tail = halves.count == 2 ? groups(halves[1]) : []
        guard let tail else { return nil }
        let all: [UInt16]
        if halves.count == 2 {
            guard head.count + tail.count <= 7 else { return nil }
            all = head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard head.count == 8 else { return nil }
            all = head
        }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }
}
