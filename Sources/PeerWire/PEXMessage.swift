import Bencode

/// A peer's TCP endpoint as PEX carries it: 4 or 16 address bytes and a port.
public struct PEXPeer: Hashable, Sendable, CustomStringConvertible {
    public var ip: [UInt8]
    public var port: UInt16

    public init(ip: [UInt8], port: UInt16) {
        precondition(ip.count == 4 || ip.count == 16, "an IPv4 or IPv6 address")
        self.ip = ip
        self.port = port
    }

    public var isIPv6: Bool { ip.count == 16 }

    /// The address as text: `10.0.0.1` or `fe80::1` (RFC 5952: the longest run of zero
    /// groups shortened).
    public var host: String {
        guard isIPv6 else { return ip.map(String.init).joined(separator: ".") }
        let groups = stride(from: 0, to: 16, by: 2).map { Int(ip[$0]) << 8 | Int(ip[$0 + 1]) }
        var best = (start: -1, length: 0)
        var i = 0
        while i < 8 {
            guard groups[i] == 0 else { i += 1; continue }
            var j = i
            while j < 8, groups[j] == 0 { j += 1 }
            if j - i > best.length, j - i > 1 { best = (i, j - i) }
            i = j
        }
        func hex(_ r: ArraySlice<Int>) -> String { r.map { String($0, radix: 16) }.joined(separator: ":") }
        guard best.start >= 0 else { return hex(groups[...]) }
        return hex(groups[..<best.start]) + "::" + hex(groups[(best.start + best.length)...])
    }

    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// BEP 11's per-peer flags (`added.f`, `added6.f`).
public struct PEXFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let encryption = PEXFlags(rawValue: 0x01)
    /// A seed, or upload only.
    public static let seed = PEXFlags(rawValue: 0x02)
    public static let utp = PEXFlags(rawValue: 0x04)
    public static let holepunch = PEXFlags(rawValue: 0x08)
    /// The sender connected to it: it accepts connections.
    public static let reachable = PEXFlags(rawValue: 0x10)
}

public struct PEXEntry: Hashable, Sendable {
    public var peer: PEXPeer
    public var flags: PEXFlags
    public init(_ peer: PEXPeer, flags: PEXFlags = []) {
        self.peer = peer
        self.flags = flags
    }
}

/// Why a `ut_pex` payload was refused.
public enum PEXMessageError: Error, Equatable, Sendable, CustomStringConvertible {
    case tooLarge(size: Int)
    case notADictionary
    /// A known key with the wrong type or length (`added` not a multiple of 6 bytes, …).
    case badField(String)

    public var description: String {
        switch self {
        case .tooLarge(let size): "ut_pex message of \(size) bytes (limit \(PEXMessage.maxSize))"
        case .notADictionary: "ut_pex message is not a bencoded dictionary"
        case .badField(let why): "ut_pex message: \(why)"
        }
    }
}

/// BEP 11 `ut_pex` payload: peers the sender connected to (`added`, with flags) and lost
/// (`dropped`), IPv4 and IPv6 in compact form.
public struct PEXMessage: Sendable, Equatable {
    public static let extensionName = "ut_pex"
    /// Larger payloads are refused before they are decoded. A message of BEP 11's size
    /// (50 added and 50 dropped of each family) is about 2.6 KiB; libtorrent's first message
    /// holds up to 100 peers.
    public static let maxSize = 64 << 10

    public var added: [PEXEntry]
    public var dropped: [PEXPeer]

    public init(added: [PEXEntry] = [], dropped: [PEXPeer] = []) {
        self.added = added
        self.dropped = dropped
    }

    /// Every key is written, empty strings included (libtorrent takes `added` only with an
    /// `added.f` of the same count).
    public func encode() -> [UInt8] {
        func compact(_ peers: [PEXPeer]) -> [UInt8] {
            peers.flatMap { $0.ip + [UInt8($0.port >> 8), UInt8($0.port & 0xff)] }
        }
        let (v4, v6) = (added.filter { !$0.peer.isIPv6 }, added.filter { $0.peer.isIPv6 })
        let d = BDictionary([
            ("added", .bytes(compact(v4.map(\.peer)))), ("added.f", .bytes(v4.map(\.flags.rawValue))),
            ("added6", .bytes(compact(v6.map(\.peer)))), ("added6.f", .bytes(v6.map(\.flags.rawValue))),
            ("dropped", .bytes(compact(dropped.filter { !$0.isIPv6 }))),
            ("dropped6", .bytes(compact(dropped.filter(\.isIPv6)))),
        ])
        return BValue.dictionary(d).encoded()
    }

    /// Strict in form, bounded in size: over `maxSize` is refused before decoding; a known
    /// key of the wrong type, a compact list whose length is not a whole number of entries,
    /// or flags whose count differs from their list's is refused. Unknown keys are ignored,
    /// absent ones are empty. Every entry is returned (the caller decides how many to use).
    public static func decode(_ bytes: [UInt8]) throws(PEXMessageError) -> PEXMessage {
        guard bytes.count <= maxSize else { throw .tooLarge(size: bytes.count) }
        guard let v = try? BencodeDecoder.decode(bytes, limits: .message), let d = v.dictionary else { throw .notADictionary }
        func field(_ key: String) throws(PEXMessageError) -> [UInt8] {
            guard let value = d[key] else { return [] }
            guard let b = value.bytes else { throw .badField("\(key) is a \(value.typeName), not a string") }
            return b
        }
        func peers(_ key: String, width: Int) throws(PEXMessageError) -> [PEXPeer] {
            let b = try field(key)
            let size = width + 2
            guard b.count % size == 0 else { throw .badField("\(key) is \(b.count) bytes, not a multiple of \(size)") }
            return stride(from: 0, to: b.count, by: size).map { i in
                PEXPeer(ip: Array(b[i..<(i + width)]), port: UInt16(b[i + width]) << 8 | UInt16(b[i + width + 1]))
            }
        }
        func entries(_ key: String, width: Int) throws(PEXMessageError) -> [PEXEntry] {
            let list = try peers(key, width: width)
            let flags = try field(key + ".f")
            if d[key + ".f"] != nil, flags.count != list.count {
                throw .badField("\(key).f has \(flags.count) flags for \(list.count) peers")
            }
            return list.enumerated().map { i, p in PEXEntry(p, flags: i < flags.count ? PEXFlags(rawValue: flags[i]) : []) }
        }
        let added = try entries("added", width: 4) + entries("added6", width: 16)
        let dropped = try peers("dropped", width: 4) + peers("dropped6", width: 16)
        return PEXMessage(added: added, dropped: dropped)
    }
}
