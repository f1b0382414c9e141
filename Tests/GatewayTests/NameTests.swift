import Locking
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Metainfo
import NIOCore
import Names
import Signing
import Testing
@testable import Gateway

/// Names (`k-…`) in the gateway: routing, the name table, and HTTP for name-addressed answers.
@Suite struct NameRouteTests {
    static let key = try! Ed25519PrivateKey.generate().publicKey
    static let name = SiteName.name(for: key)
    let router = RequestRouter(siteAtRoot: nil, hasMetrics: true, port: 8080)

    func route(_ host: String, _ target: String, _ method: HTTPRequest.Method = .get) -> Route {
        router.route(method: method, hosts: [host], target: target)
    }

    func named(_ segments: [String], query: String? = nil) -> Route {
        .name(NameTarget(name: Self.name, segments: segments, query: query))
    }

    @Test func aNameIsItsOwnOrigin() {
        #expect(route("\(Self.name).localhost:8080", "/") == named([""]))
        #expect(route("\(Self.name).localhost:8080", "/docs/a.txt?v=1") == named(["docs", "a.txt"], query: "v=1"))
        #expect(route("\(Self.name.uppercased()).LOCALHOST:8080", "/") == named([""]), "DNS names are case-insensitive")
        #expect(route("\(Self.name).localhost:8080", "/", .post) == .methodNotAllowed(allow: "GET, HEAD"))
        #expect(route("\(Self.name).localhost:8080", "/a/../b") == .badRequest("bad path: '.' and '..' are not allowed in paths"))
    }

    @Test func thePathFormMovesToTheNamesOriginOnLoopbackAndIsServedInPlaceElsewhere() {
        #expect(route("localhost:8080", "/name/\(Self.name)/docs/a.txt?v=2")
            == .toNameOrigin(name: Self.name, location: "http://\(Self.name).localhost:8080/docs/a.txt?v=2"))
        #expect(route("127.0.0.1:8080", "/name/\(Self.name)") == .toNameOrigin(name: Self.name, location: "http://\(Self.name).localhost:8080/"))
        #expect(route("example.org", "/name/\(Self.name)/docs/") == named(["docs", ""]))
        #expect(route("example.org", "/name/\(Self.name)") == .redirect("/name/\(Self.name)/"))
        #expect(route("localhost:8080", "/name/\(Self.name)/%2e%2e/x") == .badRequest("bad path: '.' and '..' are not allowed in paths"))
    }

    @Test func whatIsNotANameIsNotOne() {
        let siteID = String(repeating: "a", count: 52)
        // A site id is still a site, never a name.
        if case .site = route("\(siteID).localhost:8080", "/") {} else { Issue.record("a site id routed as something else") }
        #expect(route("k-abc.localhost:8080", "/") == .notFound("unknown site 'k-abc'"))
        #expect(route("localhost:8080", "/name/k-abc/") == .notFound("unknown name 'k-abc'"))
        #expect(route("localhost:8080", "/name/\(Self.name)x/") == .notFound("unknown name '\(Self.name)x'"))
        #expect(RequestRouter.name("x-" + Self.name.dropFirst(2)) == nil)
        #expect(RequestRouter.name(Self.name.uppercased()) == Self.name)
    }
}

/// A follower whose names resolve when the test says so.
final class FakeFollower: NameFollower {
    let followed = Locked<[String]>([])
    let misses = Locked<[String]>([])
    let unfollowed = Locked<[String]>([])
    func follow(_ name: String, in names: GatewayNames) { followed.withLock { $0.append(name) } }
    func miss(_ name: String) { misses.withLock { $0.append(name) } }
    func unfollow(_ name: String) { unfollowed.withLock { $0.append(name) } }
}

/// A site whose file bytes wait for the test to let them go, and tell it they were asked for.
final class GatedSite: SiteContent {
    let site: FakeSite
    let asked: AsyncStream<Void>
    private let askedContinuation: AsyncStream<Void>.Continuation
    private let gate = Locked<(open: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

    init(_ site: FakeSite) {
        self.site = site
        (asked, askedContinuation) = AsyncStream.makeStream(of: Void.self)
    }

    func open() {
        let waiting = gate.withLock { g in
            g.open = true
            defer { g.waiting = [] }
            return g.waiting
        }
        for w in waiting { w.resume() }
    }

    var metainfo: Metainfo? { site.metainfo }
    func ready(deadline: NIODeadline) async throws -> Metainfo { try await site.ready(deadline: deadline) }
    var stats: SiteStats { site.stats }

    func bytes(file: Int, range: Range<Int64>, deadline: NIODeadline) -> VerifiedChunks {
        askedContinuation.yield()
        let inner = Locked(site.bytes(file: file, range: range, deadline: deadline).makeAsyncIterator())
        let passed = Locked(false)
        return VerifiedChunks { [self] in
            if !passed.withLock({ $0 }) {
                await passGate()
                passed.withLock { $0 = true }
            }
            var it = inner.withLock { $0 }
            let chunk = try await it.next()
            inner.withLock { $0 = it }
            return chunk
        }
    }

    private func passGate() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let open = gate.withLock { g in
                if !g.open { g.waiting.append(c) }
                return g.open
            }
            if open { c.resume() }
        }
    }
}

@Suite struct NameResponderTests {
    static let name = NameRouteTests.name
    let host = "\(NameRouteTests.name).localhost:8080"
    let same = content(9, 2000)
    let v1: FakeSite
    let v2: FakeSite

    init() throws {
        // `same.js` is the same file in both versions: one pieces root, one ETag.
        v1 = try FakeSite(name: "site", files: ["index.html": Array("version 1".utf8), "same.js": same])
        v2 = try FakeSite(name: "site", files: ["index.html": Array("version 2".utf8), "same.js": same, "new.html": Array("new".utf8)])
    }

    func run(_ sites: GatewaySites, _ names: GatewayNames?, _ options: GatewayOptions = GatewayOptions(),
             _ test: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = Application(responder: OverTheWire(gateway: GatewayResponder(sites: sites, names: names, options: options, port: { 8080 })))
        try await app.test(.router, test)
    }

    func sites(_ content: any SiteContent...) -> GatewaySites {
        let sites = GatewaySites()
        for c in content { sites.add(c) }
        return sites
    }

    @Test func nameAddressedAnswersRevalidateAndAnUnchangedFileAnswers304AcrossVersions() async throws {
        let follower = FakeFollower()
        let names = GatewayNames(follower: follower)
        #expect(names.add(Self.name))
        names.serve(Self.name, .init(siteID: v1.id, seq: 1))
        let (host, v1, v2) = (host, v1, v2)
        let sameRoot = "\"\(v1.torrent.files[v1.file("same.js")].piecesRoot!.hex)\""
        try await run(sites(v1, v2), names) { client in
            try await client.execute(uri: "/", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .ok && String(buffer: r.body) == "version 1")
                #expect(r.headers[.cacheControl] == "max-age=10, must-revalidate", "not immutable: the name moves")
            }
            try await client.execute(uri: "/same.js", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .ok && r.headers[.eTag] == sameRoot)
            }
            // The site-id address of the same version stays immutable.
            try await client.execute(uri: "/", method: .get, headers: hostField("\(v1.id).localhost:8080")) { r in
                #expect(r.headers[.cacheControl] == "public, max-age=31536000, immutable")
            }
            names.serve(Self.name, .init(siteID: v2.id, seq: 2))
            try await client.execute(uri: "/", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .ok && String(buffer: r.body) == "version 2")
            }
            try await client.execute(uri: "/same.js", method: .get, headers: hostField(host, ["If-None-Match": sameRoot])) { r in
                #expect(r.status == .notModified, "the file did not change between versions")
                #expect(r.headers[.cacheControl] == "max-age=10, must-revalidate")
            }
            try await client.execute(uri: "/", method: .get, headers: hostField(host, ["If-None-Match": sameRoot])) { r in
                #expect(r.status == .ok, "index.html changed: its ETag is another pieces root")
            }
            try await client.execute(uri: "/name/\(Self.name)/new.html", method: .get, headers: hostField("localhost:8080")) { r in
                #expect(r.status == .movedPermanently && r.headers[.location] == "http://\(Self.name).localhost:8080/new.html")
            }
            try await client.execute(uri: "/name/\(Self.name)/new.html", method: .get, headers: hostField("example.org")) { r in
                #expect(r.status == .ok && String(buffer: r.body) == "new")
            }
        }
        #expect(follower.followed.withLock { $0 } == [Self.name], "followed once")
    }

    @Test func aMissingPathAsksForAnotherLookupWithoutWaitingForIt() async throws {
        let follower = FakeFollower()
        let names = GatewayNames(follower: follower)
        names.add(Self.name)
        names.serve(Self.name, .init(siteID: v1.id, seq: 1))
        let host = host
        try await run(sites(v1), names) { client in
            try await client.execute(uri: "/index.html", method: .get, headers: hostField(host)) { r in #expect(r.status == .ok) }
            #expect(follower.misses.withLock { $0 }.isEmpty)
            try await client.execute(uri: "/new.html", method: .get, headers: hostField(host)) { r in #expect(r.status == .notFound) }
            #expect(follower.misses.withLock { $0 } == [Self.name])
        }
    }

    @Test func aResponseComesWhollyFromTheVersionItStartedWith() async throws {
        let gated = GatedSite(v1)
        let names = GatewayNames(follower: FakeFollower())
        names.add(Self.name)
        names.serve(Self.name, .init(siteID: v1.id, seq: 1))
        let sites = GatewaySites()
        sites.add(gated)
        sites.add(v2)
        let (host, v2id) = (host, v2.id)
        try await run(sites, names) { client in
            async let first: String = client.execute(uri: "/index.html", method: .get, headers: hostField(host)) { String(buffer: $0.body) }
            // The request picked version 1 and asked for its bytes; now the name moves on.
            var asked = gated.asked.makeAsyncIterator()
            _ = await asked.next()
            names.serve(Self.name, .init(siteID: v2id, seq: 2))
            gated.open()
            #expect(try await first == "version 1")
            try await client.execute(uri: "/index.html", method: .get, headers: hostField(host)) { r in
                #expect(String(buffer: r.body) == "version 2")
            }
        }
    }

    @Test func theFirstRequestWaitsForTheFirstVersionAndGivesUpAtItsTimeout() async throws {
        let follower = FakeFollower()
        let names = GatewayNames(follower: follower)
        var options = GatewayOptions()
        options.timeout = 0.2
        let (host, v1id) = (host, v1.id)
        try await run(sites(v1), names, options) { client in
            try await client.execute(uri: "/", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .gatewayTimeout)
                #expect(String(buffer: r.body).contains("did not resolve to a site"))
            }
            #expect(follower.followed.withLock { $0 } == [Self.name], "the first request started following the name")
            names.refused(Self.name, .init(code: "not_found", reason: "no DHT node holds an item for this name"))
            try await client.execute(uri: "/", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .gatewayTimeout)
                #expect(String(buffer: r.body).contains("no DHT node holds an item for this name"), "the last refusal says why")
            }
            // A waiting request gets the version as soon as it is served.
            async let waited: String = client.execute(uri: "/", method: .get, headers: hostField(host)) { String(buffer: $0.body) }
            names.serve(Self.name, .init(siteID: v1id, seq: 1))
            #expect(try await waited == "version 1")
        }
    }

    @Test func theNamesFollowedAreBoundedAndOnesThatNeverResolvedMakeRoom() async {
        let follower = FakeFollower()
        let names = GatewayNames(follower: follower)
        let all = (0..<GatewayNames.maxNames).map { _ in SiteName.name(for: try! Ed25519PrivateKey.generate().publicKey) }
        for n in all { #expect(names.add(n)) }
        for n in all.dropFirst() { names.serve(n, .init(siteID: v1.id, seq: 1)) }
        // all[0] never resolved: the next name takes its place, and it is no longer followed.
        let one = SiteName.name(for: try! Ed25519PrivateKey.generate().publicKey)
        #expect(names.add(one))
        #expect(follower.unfollowed.withLock { $0 } == [all[0]])
        #expect(names.count == GatewayNames.maxNames)
        names.serve(one, .init(siteID: v1.id, seq: 1))
        // Every name resolved: no room.
        let another = SiteName.name(for: try! Ed25519PrivateKey.generate().publicKey)
        #expect(!names.add(another))
        #expect(await names.version(of: another, deadline: .now() + .seconds(5)) == .failure(.tooManyNames(GatewayNames.maxNames)))
    }

    @Test func withoutNamesTheGatewaySaysSo() async throws {
        let host = host
        try await run(sites(v1), nil) { client in
            try await client.execute(uri: "/", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .notFound && String(buffer: r.body).contains("resolves no names"))
            }
        }
    }

    @Test func theStatusAPIListsEachName() async throws {
        let names = GatewayNames(follower: FakeFollower())
        names.add(Self.name)
        names.serve(Self.name, .init(siteID: v1.id, seq: 3))
        names.refused(Self.name, .init(code: "older_seq", reason: "the item's seq 2 is below the served seq 3"))
        let v1id = v1.id
        try await run(sites(v1), names) { client in
            try await client.execute(uri: "/api/status", method: .get, headers: hostField("localhost:8080")) { r in
                let body = String(buffer: r.body)
                #expect(body.contains("\"names\":[{\"name\":\"\(Self.name)\",\"seq\":3,\"site_id\":\"\(v1id)\",\"last_resolved\":\"20"))
                #expect(body.contains("\"last_refusal\":{\"code\":\"older_seq\",\"reason\":\"the item's seq 2 is below the served seq 3\""))
            }
            try await client.execute(uri: "/", method: .get, headers: hostField("localhost:8080")) { r in
                let body = String(buffer: r.body)
                #expect(body.contains(Self.name) && body.contains("<td>3</td>") && body.contains("the item&#39;s seq 2 is below"))
            }
        }
    }
}
