/// Where an address can be reached from, for PEX: an address means the same peer only to
/// those in its scope. A peer on the internet that names a 10.x or 127.x address names its
/// own LAN or its own host, not ours.
///
/// The rule (both ways: what we take from a peer, and what we tell a peer): an address is
/// used with a peer whose own address is in the same or a narrower scope, in the order
/// loopback < link-local < private < global. So a peer on this host may name anything; a
/// LAN peer may name private and global addresses; a peer on the internet, global ones only.
/// Unusable addresses (unspecified, multicast, reserved, broadcast) and port 0 never are.
enum PEXScope: Int, Comparable, Sendable {
    case loopback, linkLocal, `private`, global

    static func < (a: PEXScope, b: PEXScope) -> Bool { a.rawValue < b.rawValue }

    /// nil: not an address to connect to.
    init?(ip: [UInt8]) {
        guard let scope = Self.of(ip) else { return nil }
        self = scope
    }

    private static func of(_ ip: [UInt8]) -> PEXScope? {
        switch ip.count {
        case 4:
            let (a, b) = (ip[0], ip[1])
            if a == 0 || a >= 224 { return nil }  // "this network", multicast, reserved, broadcast
            if a == 127 { return .loopback }
            if a == 169 && b == 254 { return .linkLocal }
            if a == 10 || (a == 172 && (16...31).contains(b)) || (a == 192 && b == 168) || (a == 100 && (64...127).contains(b)) {
                return .private
            }
            return .global
        case 16:
            if ip[0..<10].allSatisfy({ $0 == 0 }) && ip[10] == 0xff && ip[11] == 0xff {
                return of(Array(ip[12...]))  // IPv4-mapped
            }
            if ip[0..<15].allSatisfy({ $0 == 0 }) { return ip[15] == 1 ? .loopback : nil }  // ::1; :: is unspecified
            if ip[0] == 0xff { return nil }  // multicast
            if ip[0] == 0xfe && ip[1] & 0xc0 == 0x80 { return .linkLocal }
            if ip[0] & 0xfe == 0xfc { return .private }  // unique local
            return .global
        default:
            return nil
        }
    }

    /// An IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 peer) as the IPv4
    /// address it is, so that PEX names it in `added`, not `added6`.
    static func unmapped(_ ip: [UInt8]) -> [UInt8] {
        guard ip.count == 16, ip[0..<10].allSatisfy({ $0 == 0 }), ip[10] == 0xff, ip[11] == 0xff else { return ip }
        return Array(ip[12...])
    }

    /// Whether `address` may be taken from, or told to, a peer at `peer`.
    static func usable(_ address: [UInt8], port: UInt16, with peer: [UInt8]) -> Bool {
        guard port != 0, let scope = PEXScope(ip: address), let theirs = PEXScope(ip: peer) else { return false }
        return theirs <= scope
    }
}
