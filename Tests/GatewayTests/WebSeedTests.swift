import Locking
import Hashing
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Metainfo
import NIOCore
import Testing
@testable import Gateway

/// The gateway as a BEP 19 web seed: `/ws/<site-id>/<torrent name>/<path>` with Range, HEAD,
/// pad files as zeros, only verified bytes, on any host, never as a page.
@Suite struct WebSeedTests {
    let big = content(2, 3 * 16_384 + 100)
    let site: FakeSite
    /// Every path as a BitTorrent client writes it, percent-encoded (libtorrent's escape_path).
    let odd = "dir with space/caf\u{e9} #1?&+%.txt"
    let oddEncoded = "dir%20with%20space/caf%C3%A9%20%231%3F%26%2B%25.txt"

    init() throws {
        site = try FakeSite(name: "my site", files: ["index.html": content(1, 3000), "big.bin": big, "a/b/c.txt": content(3, 10),
                                                     "empty.txt": [], "404.html": content(4, 20), odd: content(6, 700)], hybrid: true)
    }

    func run(_ content: [any SiteContent], _ options: GatewayOptions = GatewayOptions(),
             _ test: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let sites = GatewaySites()
        for c in content { sites.add(c) }
        let app = Application(responder: OverTheWire(gateway: GatewayResponder(sites: sites, options: options, port: { 8080 })))
        try await app.test(.router, test)
    }

    var base: String { "/ws/\(site.id)/my%20site/" }

    // MARK: routing (pure)

    let router = RequestRouter(siteAtRoot: nil, hasMetrics: false, port: 8080)
    static let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    static let id = SiteID.encode(SHA256Digest(hex: hex)!)

    func route(_ method: HTTPRequest.Method, _ host: String, _ target: String, router: RequestRouter? = nil) -> Route {
        (router ?? self.router).route(method: method, hosts: [host], target: target)
    }

    func route(_ host: String, _ target: String, router: RequestRouter? = nil) -> Route {
        route(.get, host, target, router: router)
    }

    func target(_ segments: [String], label: String = id) -> Route {
        .webSeed(WebSeedTarget(site: SiteRef(id: Self.id, label: label), segments: segments))
    }

    @Test func routedOnEveryHostButASitesOwnOrigin() {
        let id = Self.id
        for host in ["localhost:8080", "127.0.0.1:8080", "[::1]:8080", "seed.example.org", "10.0.0.5:8080"] {
            #expect(route(host, "/ws/\(id)/site/a/b.txt") == target(["site", "a", "b.txt"]), "served in place on \(host), no redirect")
        }
        #expect(route("localhost:8080", "/ws/\(Self.hex)/site/x") == target(["site", "x"], label: Self.hex), "the hex form of the id too")
        #expect(route("localhost:8080", "/ws/\(id)/site/caf%C3%A9%20%23.txt?x=1") == target(["site", "café #.txt"]), "decoded; the query ignored")
        #expect(route(.head, "localhost:8080", "/ws/\(id)/site/x") == target(["site", "x"]))
        #expect(route("localhost:8080", "/ws/\(id)") == .redirect("/ws/\(id)/"))
        #expect(route("localhost:8080", "/ws/\(id)/") == target([""]))
        // A site's own origin keeps its paths: /ws/ there is the site's folder.
        #expect(route("\(id).localhost:8080", "/ws/\(id)/x") == .site(SiteTarget(site: SiteRef(id: id, label: id), segments: ["ws", id, "x"],
                                                                                   query: nil, immutable: true)))
        // A seed of one site at the root of a domain: /ws/<id>/ is the web seed, any other /ws/ the site's.
        let single = RequestRouter(siteAtRoot: id, hasMetrics: false, port: 8080)
        #expect(route("seed.example.org", "/ws/\(id)/site/x", router: single) == target(["site", "x"]))
        #expect(route("seed.example.org", "/ws/other/x", router: single) == .site(SiteTarget(site: SiteRef(id: id, label: id),
                                                                                               segments: ["ws", "other", "x"], query: nil, immutable: false)))
        #expect(route("localhost:8080", "/ws/not-a-site-id/x") == .notFound("not found"))
        #expect(route("localhost:8080", "/ws/\(id.uppercased())/x") == .notFound("not found"), "ids are lowercase")
    }

    @Test func methodsAndBadPaths() {
        let id = Self.id
        #expect(route(.options, "localhost:8080", "/ws/\(id)/site/x") == .webSeedPreflight)
        #expect(route(.post, "localhost:8080", "/ws/\(id)/site/x") == .methodNotAllowed(allow: "GET, HEAD, OPTIONS"))
        #expect(route(.put, "seed.example.org", "/ws/\(id)/site/x") == .methodNotAllowed(allow: "GET, HEAD, OPTIONS"))
        for bad in ["/site/%2e%2e/x", "/site/../x", "/site/a%2Fb", "/site/a%00b", "/site//x", "/site/%zz", "/site/a\\b", "/site/%C3"] {
            guard case .badRequest = route("localhost:8080", "/ws/\(id)" + bad) else {
                Issue.record("\(bad) is refused")
                continue
            }
        }
        #expect(route("localhost:8080", "/ws/\(id)/" + String(repeating: "a", count: SitePath.maxLength)) == .uriTooLong)
    }

    @Test func baseURLs() {
        #expect(WebSeedURL.base(listenHost: "127.0.0.1", port: 8080, siteID: "x") == "http://127.0.0.1:8080/ws/x/")
        #expect(WebSeedURL.base(listenHost: "0.0.0.0", port: 1, siteID: "x") == "http://127.0.0.1:1/ws/x/")
        #expect(WebSeedURL.base(listenHost: "::", port: 1, siteID: "x") == "http://[::1]:1/ws/x/")
        #expect(WebSeedURL.base(listenHost: "fd00::5", port: 1, siteID: "x") == "http://[fd00::5]:1/ws/x/")
        #expect(WebSeedURL.base(listenHost: "seed.lan", port: 1, siteID: "x") == "http://seed.lan:1/ws/x/")
    }

    // MARK: what a path names (pure)

    @Test func pathsNameFilesAndPads() throws {
        let m = site.torrent
        let index = SiteIndex(m)
        func resolve(_ path: String) -> WebSeedFile { WebSeedFile.resolve(path.split(separator: "/", omittingEmptySubsequences: false).map(String.init), in: m, index: index) }
        #expect(resolve("my site/a/b/c.txt") == .file(site.file("a/b/c.txt")))
        #expect(resolve("my site/empty.txt") == .file(site.file("empty.txt")))
        #expect(resolve("my site/" + odd) == .file(site.file(odd)))
        #expect(resolve("my site/.pad/\(16_384 - 100)") == .pad(16_384 - 100), "big.bin's pad")
        #expect(resolve("my site/.pad/5") == .notFound, "no pad of that length")
        #expect(resolve("my site/.pad/+\(16_384 - 100)") == .notFound && resolve("my site/.pad/0\(16_384 - 100)") == .notFound,
                "a pad's length as written, nothing else")
        for missing in ["my site/missing", "my site/a/b", "my site/a/b/", "my site/", "my site", "other/a/b/c.txt", "a/b/c.txt", "", "my site/index.html/"] {
            #expect(resolve(missing) == .notFound, "\(missing): no listings, index pages or the site's 404 page")
        }
        let one = try FakeSite(name: "one.bin", files: ["one.bin": big], hybrid: true, singleFile: true)
        let oneIndex = SiteIndex(one.torrent)
        #expect(one.torrent.isSingleFile)
        #expect(WebSeedFile.resolve(["one.bin"], in: one.torrent, index: oneIndex) == .file(0))
        #expect(WebSeedFile.resolve(["one.bin", "one.bin"], in: one.torrent, index: oneIndex) == .notFound)
        #expect(WebSeedFile.resolve(["other.bin"], in: one.torrent, index: oneIndex) == .notFound)
    }

    // MARK: answers (the responder, in process)

    @Test func filesWithRangesAndHead() async throws {
        let (big, base, root) = (big, base, site.torrent.files[site.file("big.bin")].piecesRoot!.hex)
        let (c, odd) = (content(3, 10), content(6, 700))
        let oddPath = base + oddEncoded
        try await run([site]) { client in
            try await client.execute(uri: base + "big.bin", method: .get, headers: hostField("127.0.0.1:8080")) { r in
                #expect(r.status == .ok && Array(buffer: r.body) == big)
                #expect(r.headers[.contentType] == "application/octet-stream" && r.headers[.xContentTypeOptions] == "nosniff")
                #expect(r.headers[.accessControlAllowOrigin] == "*" && r.headers[.contentSecurityPolicy] == "sandbox")
                #expect(r.headers[.cacheControl] == "public, max-age=31536000, immutable" && r.headers[.eTag] == "\"\(root)\"")
                #expect(r.headers[.acceptRanges] == "bytes")
            }
            // libtorrent asks for one range per file, across block boundaries.
            try await client.execute(uri: base + "big.bin", method: .get, headers: hostField("localhost:8080", ["Range": "bytes=16000-40000"])) { r in
                #expect(r.status == .partialContent && r.headers[.contentRange] == "bytes 16000-40000/\(big.count)")
                #expect(Array(buffer: r.body) == Array(big[16000...40000]))
            }
            try await client.execute(uri: base + "big.bin", method: .get, headers: hostField("seed.example.org", ["Range": "bytes=49000-"])) { r in
                #expect(r.status == .partialContent && Array(buffer: r.body) == Array(big[49000...]))
            }
            try await client.execute(uri: base + "big.bin", method: .get, headers: hostField("localhost:8080", ["Range": "bytes=99999999-"])) { r in
                #expect(r.status == .rangeNotSatisfiable && r.headers[.contentRange] == "bytes */\(big.count)")
            }
            try await client.execute(uri: base + "big.bin", method: .head, headers: hostField("localhost:8080", ["Range": "bytes=0-99"])) { r in
                #expect(r.status == .partialContent && r.body.readableBytes == 0 && r.headers[.contentLength] == "100")
            }
            try await client.execute(uri: base + "big.bin", method: .get, headers: hostField("localhost:8080", ["If-None-Match": "\"\(root)\""])) { r in
                #expect(r.status == .notModified && r.body.readableBytes == 0)
            }
            try await client.execute(uri: base + "a/b/c.txt", method: .get, headers: hostField("localhost:8080")) { r in
                #expect(r.status == .ok && Array(buffer: r.body) == c)
            }
            try await client.execute(uri: oddPath, method: .get, headers: hostField("localhost:8080", ["Range": "bytes=10-19"])) { r in
                #expect(r.status == .partialContent && Array(buffer: r.body) == Array(odd[10...19]))
            }
            try await client.execute(uri: base + "empty.txt", method: .get, headers: hostField("localhost:8080")) { r in
                #expect(r.status == .ok && r.body.readableBytes == 0 && r.headers[.contentLength] == "0")
            }
        }
    }

    @Test func padFilesAreZeros() async throws {
        let base = base
        let pad = 16_384 - 100
        try await run([site]) { client in
            try await client.execute(uri: base + ".pad/\(pad)", method: .get, headers: hostField("localhost:8080")) { r in
                #expect(r.status == .ok && Array(buffer: r.body) == [UInt8](repeating: 0, count: pad))
            }
            try await client.execute(uri: base + ".pad/\(pad)", method: .get, headers: hostField("localhost:8080", ["Range": "bytes=100-199"])) { r in
                #expect(r.status == .partialContent && Array(buffer: r.body) == [UInt8](repeating: 0, count: 100))
            }
        }
        var chunks = GatewayResponder.zeros(0..<(200 << 10)).makeAsyncIterator()
        var sizes: [Int] = []
        while let c = try await chunks.next() {
            #expect(c.readableBytesView.allSatisfy { $0 == 0 })
            sizes.append(c.readableBytes)
        }
        #expect(sizes == [65_536, 65_536, 65_536, 8_192], "a large pad goes out in bounded chunks")
    }

    @Test func missingThingsAre404WithoutTheSitesPage() async throws {
        let (base, id) = (base, site.id)
        try await run([site]) { client in
            for path in ["missing.js", "a/", "a/b", "", ".pad/5"] {
                try await client.execute(uri: base + path, method: .get, headers: hostField("localhost:8080")) { r in
                    #expect(r.status == .notFound && Array(buffer: r.body) != content(4, 20), "\(path)")
                    #expect(r.headers[.accessControlAllowOrigin] == "*")
                }
            }
            try await client.execute(uri: "/ws/\(id)/other-name/index.html", method: .get, headers: hostField("localhost:8080")) { r in
                #expect(r.status == .notFound, "the torrent's name comes first")
            }
            let unknown = SiteID.encode(SHA256Digest(hex: Self.hex)!)
            try await client.execute(uri: "/ws/\(unknown)/my%20site/index.html", method: .get, headers: hostField("localhost:8080")) { r in
                #expect(r.status == .notFound && String(buffer: r.body).contains("unknown site"))
            }
        }
    }

    @Test func corsPreflight() async throws {
        let base = base
        try await run([site]) { client in
            try await client.execute(uri: base + "big.bin", method: .options,
                                     headers: hostField("localhost:8080", ["Origin": "https://app.example", "Access-Control-Request-Headers": "range"])) { r in
                #expect(r.status == .noContent && r.headers[.accessControlAllowOrigin] == "*")
                #expect(r.headers[.accessControlAllowMethods] == "GET, HEAD" && r.headers[.accessControlAllowHeaders]?.contains("Range") == true)
            }
            // The gateway's own API grants nothing.
            try await client.execute(uri: "/api/status", method: .get, headers: hostField("localhost:8080", ["Origin": "https://app.example"])) { r in
                #expect(r.headers[.accessControlAllowOrigin] == nil)
            }
        }
    }

    @Test func aSingleFileSite() async throws {
        let big = big
        let one = try FakeSite(name: "one.bin", files: ["one.bin": big], hybrid: true, singleFile: true)
        let id = one.id
        try await run([one]) { client in
            try await client.execute(uri: "/ws/\(id)/one.bin", method: .get, headers: hostField("localhost:8080", ["Range": "bytes=1-2"])) { r in
                #expect(r.status == .partialContent && Array(buffer: r.body) == Array(big[1...2]))
            }
        }
    }

    // MARK: the invariant: only verified bytes

    @Test func aFileChangedOnDiskIsNeverServed() async throws {
        site.corrupt("big.bin", at: 20_000)
        let reported = Locked<[String]>([])
        var options = GatewayOptions()
        options.onFileChanged = { name, path in reported.withLock { $0.append(name + ":" + path) } }
        let (base, big) = (base, big)
        try await run([site], options) { client in
            try await client.execute(uri: base + "big.bin", method: .get, headers: hostField("localhost:8080", ["Range": "bytes=16384-32767"])) { r in
                #expect(r.status == .badGateway && String(buffer: r.body).contains("big.bin changed on disk"))
            }
            try await client.execute(uri: base + "big.bin", method: .head, headers: hostField("localhost:8080", ["Range": "bytes=16384-32767"])) { r in
                #expect(r.status == .badGateway, "HEAD answers what GET would")
            }
            try await client.execute(uri: base + "big.bin", method: .get, headers: hostField("localhost:8080", ["Range": "bytes=0-16383"])) { r in
                #expect(r.status == .partialContent && Array(buffer: r.body) == Array(big[0..<16384]), "blocks that still verify are served")
            }
        }
        #expect(reported.withLock { $0 } == ["my site:big.bin", "my site:big.bin"])
    }

    @Test func aSiteStillFetchedWaitsThenTimesOut() async throws {
        let slow = try FakeSite(name: "slow", files: ["index.html": content(5, 10)], delay: nil)
        let id = slow.id
        var options = GatewayOptions()
        options.timeout = 0.2
        try await run([slow], options) { client in
            try await client.execute(uri: "/ws/\(id)/slow/index.html", method: .get, headers: hostField("localhost:8080")) { r in
                #expect(r.status == .gatewayTimeout && r.headers[.accessControlAllowOrigin] == "*")
            }
        }
    }

    @Test func aSiteIdTheGatewayDoesNotHoldIsFetchedWhenItFetches() async throws {
        let other = try FakeSite(name: "other", files: ["a.txt": content(9, 100)])
        let sites = GatewaySites { _ in other }
        var options = GatewayOptions()
        options.fetchUnknownIDs = true
        let app = Application(responder: OverTheWire(gateway: GatewayResponder(sites: sites, options: options, port: { 8080 })))
        let id = other.id
        try await app.test(.router) { client in
            try await client.execute(uri: "/ws/\(id)/other/a.txt", method: .get, headers: hostField("localhost:8080")) { r in
                #expect(r.status == .ok && Array(buffer: r.body) == content(9, 100))
            }
        }
    }

    @Test func statusGivesEachSitesWebSeed() async throws {
        let id = site.id
        var options = GatewayOptions()
        options.listenHost = "0.0.0.0"
        try await run([site], options) { client in
            try await client.execute(uri: "/api/status", method: .get, headers: hostField("localhost:8080")) { r in
                #expect(String(buffer: r.body).contains("\"web_seed\":\"http://127.0.0.1:8080/ws/\(id)/\""))
            }
            try await client.execute(uri: "/", method: .get, headers: hostField("localhost:8080")) { r in
                #expect(String(buffer: r.body).contains("http://127.0.0.1:8080/ws/\(id)/"))
            }
        }
    }
}
