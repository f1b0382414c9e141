/// What a client tells a tracker in an announce (BEP 3, the same fields over HTTP and UDP).
public struct Announce: Sendable, Equatable {
    public enum Event: String, Sendable, Equatable {
        /// A regular announce on the tracker's interval.
        case none = ""
        case started
        case completed
        case stopped

        /// BEP 15's numbering.
        var udpCode: UInt32 {
            switch self {
            case .none: 0
            case .completed: 1
            case .started: 2
            case .stopped: 3
            }
        }
    }

    /// The 20-byte hash the swarm is known by (a v1 hash, or a v2 hash truncated).
    public var infoHash: [UInt8]
    public var peerID: [UInt8]
    public var port: UInt16
    public var uploaded: Int64 = 0
    public var downloaded: Int64 = 0
    public var left: Int64 = 0
    public var event: Event = .none
    /// Peers asked for (the tracker may send fewer).
    public var numWant = 50
    /// A random number that stays the same for this client across announces (lets a
    /// tracker recognise the client after its address changes).
    public var key: UInt32 = 0

    public init(infoHash: [UInt8], peerID: [UInt8], port: UInt16) {
        precondition(infoHash.count == 20 && peerID.count == 20)
        self.infoHash = infoHash
        self.peerID = peerID
        self.port = port
    }
}

/// A peer a tracker named.
public struct TrackerPeer: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 (IPv6).
    public let ip: [UInt8]
    public let port: UInt16

    public init?(ip: [UInt8], port: UInt16) {
        guard ip.count == 4 || ip.count == 16, port != 0 else { return nil }
        self.ip = ip
        self.port = port
    }

    /// The address as text: dotted IPv4, or IPv6 in RFC 5952 form (without brackets).
    public var host: String {
        if ip.count == 4 { return ip.map(String.init).joined(separator: ".") }
        let groups = stride(from: 0, to: 16, by: 2).map { UInt16(ip[$0]) << 8 | UInt16(ip[$0 + 1]) }
        // IPv4-mapped addresses read best as IPv4.
        if groups[0..<5].allSatisfy({ $0 == 0 }), groups[5] == 0xFFFF {
            return "::ffff:" + ip[12...].map(String.init).joined(separator: ".")
        }
        // The longest run of two or more zero groups becomes "::".
        var best = (start: -1, length: 0), run = (start: -1, length: 0)
        for (i, g) in groups.enumerated() {
            if g == 0 {
                run = run.start < 0 ? (i, 1) : (run.start, run.length + 1)
                if run.length > best.length { best = run }
            } else {
                run = (-1, 0)
            }
        }
        let hex = { (g: UInt16) in String(g, radix: 16) }
        guard best.length >= 2 else { return groups.map(hex).joined(separator: ":") }
        let head = groups[..<best.start].map(hex).joined(separator: ":")
        let tail = groups[(best.start + best.length)...].map(hex).joined(separator: ":")
        return head + "::" + tail
    }

    public var description: String { ip.count == 4 ? "\(host):\(port)" : "[\(host)]:\(port)" }

    /// Peers in compact form: `width` - 2 address bytes then a big-endian port, back to back
    /// (6 for IPv4, BEP 23; 18 for IPv6, BEP 7). A trailing partial entry is an error.
    static func compact(_ bytes: [UInt8], width: Int) throws(TrackerError) -> [TrackerPeer] {
        guard bytes.count % width == 0 else { throw .malformed("compact peers of \(bytes.count) bytes are not a multiple of \(width)") }
        var peers: [TrackerPeer] = []
        peers.reserveCapacity(bytes.count / width)
        var i = 0
        while i < bytes.count {
            let port = UInt16(bytes[i + width - 2]) << 8 | UInt16(bytes[i + width - 1])
            if let p = TrackerPeer(ip: Array(bytes[i..<i + width - 2]), port: port) { peers.append(p) }
            i += width
        }
        return peers
    }
}

/// What a tracker answered to an announce.
public struct AnnounceResponse: Sendable, Equatable {
    /// Seconds until the next regular announce.
    public var interval: Int
    /// Announcing sooner than this is not allowed (nil: not said).
    public var minInterval: Int?
    public var seeders: Int?
    public var leechers: Int?
    public var peers: [TrackerPeer]
    /// A tracker's warning (HTTP only): the announce worked.
    public var warning: String?
    /// HTTP trackers may ask for this to be sent back in later announces.
    public var trackerID: [UInt8]?
}

public enum TrackerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The tracker refused the announce and said why.
    case failure(String)
    /// The answer is not a tracker response.
    case malformed(String)

    public var description: String {
        switch self {
        case .failure(let why): "the tracker refused: \(why)"
        case .malformed(let why): "not a tracker response: \(why)"
        }
    }
}

/// Bounds on what a tracker may send.
public enum TrackerLimits {
    /// Peers kept from one response (more are ignored).
    public static let maxPeers = 500
    /// Longest HTTP response body read.
    public static let maxResponseSize = 64 << 10
    /// Intervals are clamped to this range (seconds): a tracker cannot make a client hammer
    /// it, nor silence it for days.
    public static let intervalRange = 60...(3 * 60 * 60)
    /// Longest failure or warning text kept.
    public static let maxMessageLength = 512
}
