import Bencode
import Hashing
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Merkle
import Metainfo
import NIOCore
import Testing
import TrackerProtocol
@testable import Gateway

/// A site the tracker holds: a hybrid torrent (so it has a v1 hash too), complete or not.
/// Its bytes are never asked for here.
struct TrackedSite: SiteContent {
    let torrent: Metainfo
    var complete = true

    init(name: String, complete: Bool = true) throws {
        let bytes = Array(name.utf8)
        let file = HashedFile(path: ["index.html"], length: Int64(bytes.count), tree: MerkleTree(leaves: [Digests.sha256(bytes)]),
                              v1PieceHashes: [Digests.sha1(bytes)])
        torrent = try TorrentBuilder.build(name: name, pieceLength: 16_384, files: [file], hybrid: true).metainfo
        self.complete = complete
    }

    var metainfo: Metainfo? { torrent }
    func ready(deadline: NIODeadline) async throws -> Metainfo { torrent }
    func bytes(file: Int, range: Range<Int64>, deadline: NIODeadline) -> VerifiedChunks { VerifiedChunks(ready: .failure(WrongLength())) }
    var stats: SiteStats { SiteStats(verified: complete ? torrent.totalSize : 0, total: torrent.totalSize) }

    var v1: [UInt8] { torrent.v1InfoHash!.bytes }
    var v2Short: [UInt8] { Array(torrent.v2InfoHash!.bytes.prefix(20)) }
}

private func escaped(_ bytes: [UInt8]) -> String { HTTPTracker.percentEncoded(bytes) }

private func query(_ hash: [UInt8], port: Int, left: Int = 0, more: String = "") -> String {
    "info_hash=\(escaped(hash))&peer_id=-LT2080-abcdefghijkl&port=\(port)&uploaded=0&downloaded=0&left=\(left)&compact=1\(more)"
}

private func address(_ ip: String, _ port: Int = 40_000) -> SocketAddress { try! SocketAddress(ipAddress: ip, port: port) }

private func decoded(_ answer: GatewayTracker.Answer) throws -> AnnounceResponse { try HTTPTracker.response(answer.body) }

private func failure(_ answer: GatewayTracker.Answer) -> String? {
    do {
        _ = try HTTPTracker.response(answer.body)
        return nil
    } catch {
        guard case .failure(let why) = error else { return nil }
        return why
    }
}

@Suite struct GatewayTrackerTests {
    let site: TrackedSite
    let sites = GatewaySites()

    init() throws {
        site = try TrackedSite(name: "tracked")
        sites.add(site)
    }

    @Test func bothHashesOfAHybridAreTracked() throws {
        let tracker = GatewayTracker(sites: sites)
        for hash in [site.v1, site.v2Short] {
            let first = tracker.answer(query: query(hash, port: 6881), remote: address("10.0.0.1"), local: address("10.0.0.100", 8080))
            #expect(try first.status == .ok && decoded(first).peers.isEmpty)
            let second = try decoded(tracker.answer(query: query(hash, port: 6882, left: 10), remote: address("10.0.0.2"), local: address("10.0.0.100", 8080)))
            #expect(second.peers.map(\.description) == ["10.0.0.1:6881"] && second.seeders == 1 && second.leechers == 1)
        }
        #expect(tracker.announceCounts == [site.torrent.siteID!: 4] && tracker.peerCount == 4)
    }

    @Test func unknownHashesAndMalformedAnnouncesAreRefusedInBencode() {
        let tracker = GatewayTracker(sites: sites)
        let unknown = tracker.answer(query: query([UInt8](repeating: 7, count: 20), port: 1), remote: address("10.0.0.1"), local: nil)
        #expect(unknown.status == .ok && failure(unknown) == "this gateway holds no site with info hash " + String(repeating: "07", count: 20))
        // The full v2 hash is not a 20-byte swarm name.
        let long = tracker.answer(query: query(site.torrent.v2InfoHash!.bytes, port: 1), remote: address("10.0.0.1"), local: nil)
        #expect(long.status == .badRequest && failure(long) == "info_hash is 32 bytes, not 20")
        let short = tracker.answer(query: "info_hash=%01%02&peer_id=x", remote: address("10.0.0.1"), local: nil)
        #expect(short.status == .badRequest && failure(short) == "info_hash is 2 bytes, not 20")
        let none = tracker.answer(query: "", remote: address("10.0.0.1"), local: nil)
        #expect(none.status == .badRequest && failure(none) == "no info_hash")
        #expect(tracker.peerCount == 0 && tracker.announceCounts.isEmpty)
    }

    @Test func theGatewayListsItselfWhereTheClientReachedIt() throws {
        let wildcard = GatewayTracker(sites: sites, peerListeners: { [address("0.0.0.0", 7000)] })
        let r = try decoded(wildcard.answer(query: query(site.v1, port: 6881, left: 5), remote: address("127.0.0.1"), local: address("127.0.0.1", 8080)))
        #expect(r.peers.map(\.description) == ["127.0.0.1:7000"] && r.seeders == 1 && r.leechers == 1)
        // Reached over IPv6 while peers are taken on IPv4 only: not listed.
        let v6 = try decoded(wildcard.answer(query: query(site.v1, port: 6881, left: 5), remote: address("::1"), local: address("::1", 8080)))
        #expect(!v6.peers.contains { $0.port == 7000 })
        // Both families (the default 0.0.0.0 and [::]); an IPv4 client of a dual-stack gateway
        // socket is named by its IPv4 address.
        let dual = GatewayTracker(sites: sites, peerListeners: { [address("0.0.0.0", 7000), address("::", 7000)] })
        let mapped = try decoded(dual.answer(query: query(site.v1, port: 6881, left: 5), remote: address("::ffff:10.0.0.5"), local: address("::ffff:10.0.0.100", 8080)))
        #expect(mapped.peers.map(\.description) == ["10.0.0.100:7000"])
        let seen = try decoded(dual.answer(query: query(site.v1, port: 6882, left: 5), remote: address("10.0.0.6"), local: address("10.0.0.100", 8080)))
        #expect(Set(seen.peers.map(\.description)) == ["10.0.0.100:7000", "10.0.0.5:6881"])
        let overV6 = try decoded(dual.answer(query: query(site.v1, port: 6883, left: 5), remote: address("2001:db8::9"), local: address("2001:db8::1", 8080)))
        // (Read back, peers6 come after peers.)
        #expect(Set(overV6.peers.map(\.description)) == ["[2001:db8::1]:7000", "10.0.0.5:6881", "10.0.0.6:6882"], "an IPv6 client is sent the IPv6 listener")
        // A listener on one address is listed at that address.
        let bound = GatewayTracker(sites: sites, peerListeners: { [address("192.168.1.4", 7000)] })
        let b = try decoded(bound.answer(query: query(site.v1, port: 6881, left: 5), remote: address("127.0.0.1"), local: address("127.0.0.1", 8080)))
        #expect(b.peers.map(\.description) == ["192.168.1.4:7000"])
        // No peer listener: not listed.
        let none = GatewayTracker(sites: sites, peerListeners: { [] })
        #expect(try decoded(none.answer(query: query(site.v1, port: 6881, left: 5), remote: address("127.0.0.1"), local: address("127.0.0.1", 8080))).peers.isEmpty)
    }

    @Test func anIncompleteSiteListsTheGatewayAsALeecher() throws {
        let partial = try TrackedSite(name: "partial", complete: false)
        let sites = GatewaySites()
        sites.add(partial)
        let tracker = GatewayTracker(sites: sites, peerListeners: { [address("0.0.0.0", 7000)] })
        let seeder = try decoded(tracker.answer(query: query(partial.v2Short, port: 6881, left: 0), remote: address("127.0.0.1"), local: address("127.0.0.1", 8080)))
        #expect(seeder.peers.map(\.description) == ["127.0.0.1:7000"] && seeder.seeders == 1 && seeder.leechers == 1)
    }

    @Test func tenThousandFakePortsFromOneAddressKeepTheTableAndAnswersSmall() throws {
        let tracker = GatewayTracker(sites: sites)
        _ = tracker.answer(query: query(site.v1, port: 6881), remote: address("10.0.0.1"), local: nil)
        var largest = 0
        for port in 10_000..<20_000 {
            let a = tracker.answer(query: query(site.v1, port: port, left: 1, more: "&numwant=100000"), remote: address("10.9.9.9"), local: nil)
            largest = max(largest, a.body.count)
        }
        #expect(tracker.peerCount == 1 + TrackerTable.Limits().peersPerAddress)
        #expect(largest <= 100 + 6 * (1 + TrackerTable.Limits().peersPerAddress), "largest answer \(largest) bytes")
        let r = try decoded(tracker.answer(query: query(site.v1, port: 6882, left: 1), remote: address("10.0.0.2"), local: nil))
        #expect(r.peers.contains { $0.description == "10.0.0.1:6881" }, "the honest seeder is still listed")
    }
}

/// `/announce` over real HTTP on loopback: the connection's addresses reach the tracker.
@Suite struct GatewayTrackerHTTPTests {
    @Test func clientsFindEachOtherAndTheGatewayOverHTTP() async throws {
        let site = try TrackedSite(name: "over-http")
        let sites = GatewaySites()
        sites.add(site)
        // Hummingbird's live test binds "localhost": IPv4 or IPv6, so peers are taken on both.
        let tracker = GatewayTracker(sites: sites, peerListeners: { [address("0.0.0.0", 7000), address("::", 7000)] })
        let gateway = GatewayResponder(sites: sites, options: GatewayOptions(), port: { 8080 }, tracker: tracker)
        let app = Application(responder: gateway, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            try await client.execute(uri: "/announce?" + query(site.v1, port: 6881, left: 0), method: .get) { r in
                #expect(r.status == .ok && r.headers[.contentType] == "text/plain" && r.headers[.cacheControl] == "no-store")
                let peers = try HTTPTracker.response(Array(buffer: r.body)).peers
                #expect(peers.isEmpty, "a seeder is not sent the seeding gateway")
            }
            try await client.execute(uri: "/announce?" + query(site.v1, port: 6882, left: 9), method: .get) { r in
                // The gateway first, at the loopback address the client reached; then the seeder.
                let peers = try HTTPTracker.response(Array(buffer: r.body)).peers
                #expect(peers.map(\.port) == [7000, 6881] && peers[0].ip == peers[1].ip && [[127, 0, 0, 1], [UInt8](repeating: 0, count: 15) + [1]].contains(peers[0].ip))
            }
            // A HEAD gets the status and length a GET would get, and neither keeps nor counts the client.
            try await client.execute(uri: "/announce?" + query(site.v1, port: 6884, left: 9), method: .head) { r in
                #expect(r.status == .ok && r.headers[.cacheControl] == "no-store" && r.body.readableBytes == 0)
                // The gateway and the two peers: 12-byte compact entries, or 18 for IPv6.
                let length = try #require(r.headers[.contentLength].flatMap { Int($0) })
                #expect(length > 2 * 12, "\(length)")
            }
            #expect(tracker.peerCount == 2 && tracker.announceCounts == [site.torrent.siteID!: 2], "6881 and 6882 only")
            try await client.execute(uri: "/announce?info_hash=%01", method: .head) { r in
                #expect(r.status == .badRequest)
                #expect(r.headers[.contentLength] == String(HTTPTracker.failureBody("info_hash is 1 bytes, not 20").count))
            }
            try await client.execute(uri: "/announce?info_hash=%01", method: .get) { r in
                #expect(r.status == .badRequest)
                #expect(throws: TrackerError.failure("info_hash is 1 bytes, not 20")) { try HTTPTracker.response(Array(buffer: r.body)) }
            }
            try await client.execute(uri: "/announce?" + query(site.v1, port: 6883), method: .post) { r in
                #expect(r.status == .methodNotAllowed)
            }
        }
    }
}

@Suite struct TrackerStatusTests {
    @Test func theStatusAPICountsAnnouncesPerSite() async throws {
        let site = try TrackedSite(name: "counted")
        let sites = GatewaySites()
        sites.add(site)
        let tracker = GatewayTracker(sites: sites)
        for port in 1...3 { _ = tracker.answer(query: query(site.v1, port: port), remote: address("10.0.0.1"), local: nil) }
        _ = tracker.answer(query: query(site.v2Short, port: 1, more: "&event=stopped"), remote: address("10.0.0.1"), local: nil)
        let gateway = GatewayResponder(sites: sites, options: GatewayOptions(), port: { 8080 }, tracker: tracker)
        try await Application(responder: OverTheWire(gateway: gateway)).test(.router) { client in
            try await client.execute(uri: "/api/status", method: .get, headers: hostField("localhost:8080")) { r in
                let text = String(buffer: r.body)
                #expect(text.contains("\"tracker\":{\"announces\":{\"\(site.torrent.siteID!)\":4},\"peers\":3},"), "\(text)")
            }
        }
        // Without a tracker there is no such key.
        let plain = GatewayResponder(sites: sites, options: GatewayOptions(), port: { 8080 })
        try await Application(responder: OverTheWire(gateway: plain)).test(.router) { client in
            try await client.execute(uri: "/api/status", method: .get, headers: hostField("localhost:8080")) { r in
                #expect(!String(buffer: r.body).contains("\"tracker\""))
            }
        }
    }
}

@Suite struct TrackerRouteTests {
    let id = RouteTests.id

    @Test func announceIsTheTrackerOnTheGatewaysOriginAndAtASitesRoot() {
        let gateway = RequestRouter(siteAtRoot: nil, hasMetrics: false, port: 8080)
        #expect(gateway.route(method: .get, hosts: ["localhost:8080"], target: "/announce?info_hash=x") == .announce(query: "info_hash=x"))
        #expect(gateway.route(method: .get, hosts: ["127.0.0.1:8080"], target: "/announce") == .announce(query: ""))
        #expect(gateway.route(method: .head, hosts: ["example.org"], target: "/announce?a=b") == .announce(query: "a=b"))
        #expect(gateway.route(method: .post, hosts: ["localhost:8080"], target: "/announce") == .methodNotAllowed(allow: "GET, HEAD"))
        // A site's own origin keeps its paths: /announce there is a file of the site.
        let onSite = gateway.route(method: .get, hosts: ["\(id).localhost:8080"], target: "/announce?info_hash=x")
        #expect(onSite == .site(SiteTarget(site: SiteRef(id: id, label: id), segments: ["announce"], query: "info_hash=x", immutable: true)))

        // `seed` of one site: at the root of any host, an announce (info_hash given) is the tracker …
        let single = RequestRouter(siteAtRoot: id, hasMetrics: false, port: 8080)
        #expect(single.route(method: .get, hosts: ["example.org"], target: "/announce?peer_id=p&info_hash=%01") == .announce(query: "peer_id=p&info_hash=%01"))
        #expect(single.route(method: .get, hosts: ["127.0.0.1:8080"], target: "/announce?info_hash=x") == .announce(query: "info_hash=x"))
        // … and anything else there is the site's.
        let page = SiteTarget(site: SiteRef(id: id, label: id), segments: ["announce"], query: nil, immutable: false)
        #expect(single.route(method: .get, hosts: ["example.org"], target: "/announce") == .site(page))
        var withQuery = page
        withQuery.query = "x_info_hash=1"
        #expect(single.route(method: .get, hosts: ["example.org"], target: "/announce?x_info_hash=1") == .site(withQuery))
        #expect(single.route(method: .get, hosts: ["localhost:8080"], target: "/announce?info_hash=x") == .announce(query: "info_hash=x"))
    }
}
