/// UDP trackers (BEP 15): the packets of the connect and announce exchanges. No I/O here;
/// the transaction ids, retries (15 × 2ⁿ s) and the connection id's one-minute life are
/// the caller's.
public enum UDPTracker {
    static let protocolID: UInt64 = 0x417_2710_1980
    enum Action: UInt32 {
        case connect = 0
        case announce = 1
        case scrape = 2
        case error = 3
    }

    /// The 16-byte connect request.
    public static func connectRequest(transaction: UInt32) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16)
        put(protocolID, &out)
        put(Action.connect.rawValue, &out)
        put(transaction, &out)
        return out
    }

    /// The 98-byte announce request (the IP field 0: the tracker uses the packet's source).
    public static func announceRequest(connection: UInt64, transaction: UInt32, _ a: Announce) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(98)
        put(connection, &out)
        put(Action.announce.rawValue, &out)
        put(transaction, &out)
        out += a.infoHash
        out += a.peerID
        put(UInt64(max(0, a.downloaded)), &out)
        put(UInt64(max(0, a.left)), &out)
        put(UInt64(max(0, a.uploaded)), &out)
        put(a.event.udpCode, &out)
        put(UInt32(0), &out)
        put(a.key, &out)
        put(UInt32(bitPattern: Int32(clamping: a.numWant)), &out)
        out += [UInt8(a.port >> 8), UInt8(a.port & 0xFF)]
        return out
    }

    public enum Reply: Sendable, Equatable {
        case connected(connection: UInt64)
        case announced(AnnounceResponse)
    }

    /// Reads a reply to the request with `transaction`. `ipv6`: the request went over IPv6,
    /// so peers are 18 bytes each (BEP 15: the peer size follows the tracker's address family).
    /// A reply to another transaction, or of the wrong size, is an error; the tracker's
    /// own error message becomes `TrackerError.failure`.
    public static func reply(_ bytes: [UInt8], transaction: UInt32, ipv6: Bool) throws(TrackerError) -> Reply {
        guard bytes.count >= 8 else { throw .malformed("a UDP reply of \(bytes.count) bytes") }
        guard read32(bytes, 4) == transaction else { throw .malformed("a reply to another transaction") }
        switch Action(rawValue: read32(bytes, 0)) {
        case .connect?:
            guard bytes.count >= 16 else { throw .malformed("a connect reply of \(bytes.count) bytes") }
            return .connected(connection: UInt64(read32(bytes, 8)) << 32 | UInt64(read32(bytes, 12)))
        case .announce?:
            guard bytes.count >= 20 else { throw .malformed("an announce reply of \(bytes.count) bytes") }
            let width = ipv6 ? 18 : 6
            let body = Array(bytes[20...])
            let usable = body.prefix(body.count - body.count % width)
            let peers = try TrackerPeer.compact(Array(usable.prefix(TrackerLimits.maxPeers * width)), width: width)
            return .announced(AnnounceResponse(
                interval: HTTPTracker.clampedInterval(Int64(read32(bytes, 8))), minInterval: nil,
                seeders: Int(read32(bytes, 16)), leechers: Int(read32(bytes, 12)), peers: peers, warning: nil, trackerID: nil))
        case .error?:
            throw .failure(HTTPTracker.text(Array(bytes[8...])))
        default:
            throw .malformed("unknown action \(read32(bytes, 0))")
        }
    }

    private static func put(_ v: UInt64, _ out: inout [UInt8]) {
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }

    private static func put(_ v: UInt32, _ out: inout [UInt8]) {
        for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) }
    }

    private static func read32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }
}
