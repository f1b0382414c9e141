import Locking
import DHTProtocol
import Hashing
import Hummingbird
import NIOCore
import TrackerProtocol

/// The gateway as an HTTP tracker (BEP 3, compact peers BEP 23, IPv6 peers BEP 7) for the
/// sites it holds, so a site's torrent can name its own origin as tracker: `GET /announce`
/// with the v1 hash of a hybrid or its v2 hash truncated to 20 bytes. Peers are kept in a
/// `TrackerTable` (its rules bound everything a client can make it keep or send); the
/// gateway itself is listed as a peer of each site it holds (a seeder once the site is
/// complete), at the address the client reached it on and the peer port.
public final class GatewayTracker: Sendable {
    private let sites: GatewaySites
    private let table: Locked<TrackerTable>
    private let announces = Locked<[String: Int]>([:])
    private let peerListeners: (@Sendable () -> [SocketAddress])?
    private let seeded: (@Sendable () -> [[UInt8]])?
    private let clock: @Sendable () -> Double

    /// `peerListeners`: where this host takes peer connections, a socket per family (nil or
    /// none: the gateway does not list itself). `seeded`: the 20-byte hashes of torrents this host
    /// seeds that are no site (a v1-only torrent), tracked too. `clock`: seconds, only
    /// compared with each other.
    public init(sites: GatewaySites, limits: TrackerTable.Limits = .init(), peerListeners: (@Sendable () -> [SocketAddress])? = nil,
                seeded: (@Sendable () -> [[UInt8]])? = nil, clock: @escaping @Sendable () -> Double = { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }) {
        self.sites = sites
        table = Locked(TrackerTable(limits: limits))
        self.peerListeners = peerListeners
        self.seeded = seeded
        self.clock = clock
    }

    public struct Answer: Sendable, Equatable {
        public var status: HTTPResponse.Status
        /// A bencoded dictionary: the announce's answer, or a `failure reason`.
        public var body: [UInt8]
    }

    /// The answer to `GET /announce?<query>` from `remote`, received on `local`. A malformed
    /// announce is a 400 and an unknown hash a 200, both with a bencoded `failure reason`
    /// (clients show it); neither is kept. `keep` false (a HEAD, which must change nothing):
    /// the answer is worked out on a copy of the table, and the announce is neither kept nor
    /// counted.
    public func answer(query: String, remote: SocketAddress?, local: SocketAddress?, keep: Bool = true) -> Answer {
        guard let ip = remote.flatMap(Self.bytes) else { return Answer(status: .badRequest, body: HTTPTracker.failureBody("no client address")) }
        let request: AnnounceRequest
        do {
            request = try AnnounceRequest.parse(query)
        } catch {
            return Answer(status: .badRequest, body: HTTPTracker.failureBody(error.reason))
        }
        let hash = request.announce.infoHash
        guard let (name, complete) = held(hash) else {
            return Answer(status: .ok, body: HTTPTracker.failureBody("this gateway holds no site with info hash \(HexCoding.encode(hash))"))
        }
        let extra = ownPeer(local: local).map { TrackerTable.Extra(peer: $0, seeder: complete) }
        let now = clock()
        let response = table.withLock { t in
            // A generator with storage: passing the empty SystemRandomNumberGenerator inout
            // gives ThreadSanitizer no real address (see DHTProtocol's SystemRandom).
            var rng = SystemRandom()
            guard keep else {
                // Expired entries go from the table itself (no answer names them), so the
                // copy's announce copies only the swarm asked about.
                t.sweep(now: now)
                var copy = t
                return copy.announce(request.announce, from: ip, now: now, extra: extra, using: &rng)
            }
            return t.announce(request.announce, from: ip, now: now, extra: extra, using: &rng)
        }
        if keep { announces.withLock { $0[name, default: 0] += 1 } }
        return Answer(status: .ok, body: HTTPTracker.body(response, compact: request.compact))
    }

    /// Announces answered per site id (or hex hash of a seeded torrent that is no site).
    public var announceCounts: [String: Int] { announces.withLock { $0 } }

    /// Peers the table keeps, in all.
    public var peerCount: Int { table.withLock { $0.count } }

    /// The site whose v1 hash or truncated v2 hash is `hash` (its id, and whether all of it
    /// is here), or a seeded torrent that is no site (its hex hash; complete).
    func held(_ hash: [UInt8]) -> (String, complete: Bool)? {
        let site = sites.all.first { site in
            site.v2Hash.bytes.prefix(20).elementsEqual(hash) || site.content.metainfo?.v1InfoHash?.bytes == hash
        }
        if let site { return (site.id, Self.complete(site.content.stats)) }
        if seeded?().contains(hash) == true { return (HexCoding.encode(hash), true) }
        return nil
    }

    static func complete(_ s: SiteStats) -> Bool { s.total > 0 && s.verified == s.total }

    /// This host as a peer, for a client that reached the gateway at `local`: the peer
    /// listener of that address family; at its address, or when it listens on a wildcard
    /// (0.0.0.0, ::) at `local`'s. No listener of that family: none of a bound address's
    /// family either (the first listener bound to a single address is named then).
    func ownPeer(local: SocketAddress?) -> TrackerPeer? {
        let listeners = (peerListeners?() ?? []).compactMap { l in l.port.flatMap { p in Self.bytes(l).map { (ip: $0, port: p) } } }
        let here = local.flatMap(Self.bytes)
        let family = listeners.first { $0.ip.count == here?.count } ?? listeners.first { !Self.isWildcard($0.ip) }
        guard let listener = family else { return nil }
        guard Self.isWildcard(listener.ip) else { return TrackerPeer(ip: listener.ip, port: UInt16(listener.port)) }
        guard let here, here.count == listener.ip.count else { return nil }
        return TrackerPeer(ip: here, port: UInt16(listener.port))
    }

    static func isWildcard(_ ip: [UInt8]) -> Bool { ip.allSatisfy { $0 == 0 } }

    /// An IP address as 4 or 16 bytes; an IPv4-mapped IPv6 address (a dual-stack socket's
    /// IPv4 client) as its 4 IPv4 bytes.
    static func bytes(_ address: SocketAddress) -> [UInt8]? {
        switch address {
        case .v4(let a):
            return withUnsafeBytes(of: a.address.sin_addr) { Array($0) }
        case .v6(let a):
            let b = withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
            if b[0..<10].allSatisfy({ $0 == 0 }), b[10] == 0xFF, b[11] == 0xFF { return Array(b[12...]) }
            return b
        default:
            return nil
        }
    }
}

extension StatusPage {
    /// `"tracker":{"announces":{"<site id>":N,…},"peers":N},` for `/api/status`: the announces
    /// answered per site (or hex hash of a seeded torrent that is no site), and the peers kept.
    static func trackerJSON(_ tracker: GatewayTracker) -> String {
        let counts = tracker.announceCounts.sorted { $0.key < $1.key }.map { "\(quote($0.key)):\($0.value)" }
        return "\"tracker\":{\"announces\":{" + counts.joined(separator: ",") + "},\"peers\":\(tracker.peerCount)},"
    }
}

extension GatewayResponder {
    /// `/announce`: the tracker's bencoded answer, never cached. A HEAD gets the status and
    /// length a GET would get, and changes nothing.
    func announce(_ query: String, request: Request, context: Context) -> Response {
        guard let tracker else { return plain(.notFound, "this gateway is not a tracker") }
        let head = request.method == .head
        let answer = tracker.answer(query: query, remote: context.remoteAddress, local: context.localAddress, keep: !head)
        var h = HTTPFields()
        h[.contentType] = "text/plain"
        h[.xContentTypeOptions] = "nosniff"
        h[.cacheControl] = "no-store"
        h[.contentLength] = String(answer.body.count)
        let body = head ? ResponseBody() : ResponseBody(byteBuffer: ByteBuffer(bytes: answer.body))
        return Response(status: answer.status, headers: h, body: body)
    }
}
