public enum AddressFamily: Sendable, Hashable {
    case ipv4, ipv6
}

/// An IPv4 or IPv6 address as numbers (network byte order read big-endian), so it hashes
/// and compares without allocating.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(UInt32)
    case v6(high: UInt64, low: UInt64)

    /// From 4 or 16 network-order bytes.
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        switch bytes.count {
        case 4:
            self = .v4(bytes.reduce(0) { $0 << 8 | UInt32($1) })
        case 16:
            var h: UInt64 = 0, l: UInt64 = 0
            for (i, b) in bytes.enumerated() {
                if i < 8 { h = h << 8 | UInt64(b) } else { l = l << 8 | UInt64(b) }
            }
            self = .v6(high: h, low: l)
        default:
            return nil
        }
    }

    /// Dotted-quad IPv4 (`192.0.2.1`) or IPv6 text with optional `::` (`2001:db8::1`);
    /// no zone ids and no embedded IPv4 form.
    public init?(_ text: String) {
        if text.contains(":") {
            guard let v = IPAddress.parseV6(text) else { return nil }
            self = v
        } else {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var v: UInt32 = 0
            for p in parts {
                guard (1...3).contains(p.count), p.allSatisfy({ $0.isASCII && $0.isWholeNumber }), let n = UInt8(p),
                      p.count == 1 || p.first != "0" else { return nil }
                v = v << 8 | UInt32(n)
            }
            self = .v4(v)
        }
    }

    private static func parseV6(_ text: String) -> IPAddress? {
        let halves = text.split(separator: "::", maxSplits: 2, omittingEmptySubsequences: false)
        guard halves.count <= 2 else { return nil }
        func groups(_ s: Substring) -> [UInt16]? {
            if s.isEmpty { return [] }
            var out: [UInt16] = []
            for g in s.split(separator: ":", omittingEmptySubsequences: false) {
                guard (1...4).contains(g.count), g.allSatisfy({ $0.isASCII && $0.isHexDigit }), let n = UInt16(g, radix: 16) else { return nil }
                out.append(n)
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        var all: [UInt16]
        if halves.count == 2 {
            guard let tail = groups(halves[1]), head.count + tail.count < 8 else { return nil }
            all = head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard head.count == 8 else { return nil }
            all = head
        }
        let h = all[0..<4].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        let l = all[4..<8].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        return .v6(high: h, low: l)
    }

    public var family: AddressFamily {
        switch self {
        case .v4: .ipv4
        case .v6: .ipv6
        }
    }

    /// Network-order bytes: 4 or 16.
    public var bytes: [UInt8] {
        switch self {
        case .v4(let v):
            return [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)]
        case .v6(let h, let l):
            var out = [UInt8]()
            out.reserveCapacity(16)
            for s in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: h >> UInt64(s))) }
            for s in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: l >> UInt64(s))) }
            return out
        }
    }

    /// 0.0.0.0 or ::, which no peer can be reached at.
    public var isUnspecified: Bool {
        switch self {
        case .v4(let v): v == 0
        case .v6(let h, let l): h == 0 && l == 0
        }
    }

    public var description: String {
        switch self {
        case .v4:
            return bytes.map { String($0) }.joined(separator: ".")
        case .v6(let h, let l):
            // RFC 5952, as inet_ntop writes it (and as connections from peers are named): the
            // longest run of two or more zero groups (the first of equal runs) becomes `::`.
            var groups: [UInt16] = []
            for word in [h, l] {
                for shift in stride(from: UInt64(48), through: 0, by: -16) { groups.append(UInt16(truncatingIfNeeded: word >> shift)) }
            }
            var best = (start: 0, count: 0), run = (start: 0, count: 0)
            for (i, g) in groups.enumerated() {
                if g == 0 {
                    run = run.count == 0 ? (i, 1) : (run.start, run.count + 1)
                    if run.count > best.count { best = run }
                } else {
                    run = (0, 0)
                }
            }
            let text = { (range: ArraySlice<UInt16>) in range.map { String($0, radix: 16) }.joined(separator: ":") }
            guard best.count >= 2 else { return text(groups[...]) }
            return text(groups[..<best.start]) + "::" + text(groups[(best.start + best.count)...])
        }
    }
}

/// An address and port: a peer (BEP 5 "compact IP-address/port info", 6 or 18 bytes) or
/// where a node's datagrams come from.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    public var ip: IPAddress
    public var port: UInt16

    public init(ip: IPAddress, port: UInt16) {
        self.ip = ip
        self.port = port
    }

    /// From the compact form: address bytes then the port, big-endian (6 or 18 bytes).
    public init?<C: Collection>(compact: C) where C.Element == UInt8 {
        guard compact.count == 6 || compact.count == 18 else { return nil }
        let split = compact.index(compact.endIndex, offsetBy: -2)
        guard let ip = IPAddress(bytes: compact[..<split]) else { return nil }
        let hi = compact[split], lo = compact[compact.index(after: split)]
        self.init(ip: ip, port: UInt16(hi) << 8 | UInt16(lo))
    }

    public var compact: [UInt8] { ip.bytes + [UInt8(port >> 8), UInt8(port & 0xff)] }

    public static func compactSize(_ family: AddressFamily) -> Int { family == .ipv4 ? 6 : 18 }

    public var description: String {
        switch ip {
        case .v4: "\(ip):\(port)"
        case .v6: "[\(ip)]:\(port)"
        }
    }
}

/// A node's id and endpoint: BEP 5 "compact node info" (26 bytes) or its BEP 32 IPv6
/// form (38 bytes).
public struct NodeInfo: Hashable, Sendable, CustomStringConvertible {
    public var id: NodeID
    public var endpoint: Endpoint

    public init(id: NodeID, endpoint: Endpoint) {
        self.id = id
        self.endpoint = endpoint
    }

    public init?<C: Collection>(compact: C) where C.Element == UInt8 {
        guard compact.count == 26 || compact.count == 38 else { return nil }
        let split = compact.index(compact.startIndex, offsetBy: 20)
        guard let id = NodeID(bytes: compact[..<split]), let e = Endpoint(compact: compact[split...]) else { return nil }
        self.init(id: id, endpoint: e)
    }

    public var compact: [UInt8] { id.bytes + endpoint.compact }

    public static func compactSize(_ family: AddressFamily) -> Int { family == .ipv4 ? 26 : 38 }

    public var description: String { "\(id.hex.prefix(8))…@\(endpoint)" }
}
