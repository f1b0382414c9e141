import Hashing
import Hummingbird
import Metainfo
import Testing
@testable import Gateway

@Suite struct RouteTests {
    static let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    static let id = SiteID.encode(SHA256Digest(hex: hex)!)
    let router = RequestRouter(siteAtRoot: nil, hasMetrics: true, port: 8080)

    func route(_ method: HTTPRequest.Method, _ host: String, _ target: String, router: RequestRouter? = nil) -> Route {
        (router ?? self.router).route(method: method, hosts: [host], target: target)
    }

    func route(_ host: String, _ target: String, router: RequestRouter? = nil) -> Route {
        route(.get, host, target, router: router)
    }

    func site(_ segments: [String], query: String? = nil, immutable: Bool = true, label: String = id) -> Route {
        .site(SiteTarget(site: SiteRef(id: Self.id, label: label), segments: segments, query: query, immutable: immutable))
    }

    @Test func theGatewaysOwnOrigin() {
        #expect(route("localhost:8080", "/") == .statusPage)
        #expect(route(.head, "localhost:8080", "/") == .statusPage)
        #expect(route("127.0.0.1:8080", "/api/status") == .statusAPI)
        #expect(route(.post, "localhost:8080", "/api/sites") == .addSite)
        #expect(route("localhost:8080", "/metrics") == .metrics)
        #expect(route("localhost:8080", "/nothing") == .notFound("not found"))
        #expect(route(.get, "localhost:8080", "/api/sites") == .notFound("not found"))
        #expect(route(.put, "localhost:8080", "/api/sites") == .methodNotAllowed(allow: "POST"))
        #expect(route(.delete, "localhost:8080", "/") == .methodNotAllowed(allow: "GET, HEAD"))
    }

    @Test func metricsOnlyWhenAskedForAndOnlyOnTheGatewaysOrigin() {
        let without = RequestRouter(siteAtRoot: nil, hasMetrics: false, port: 8080)
        #expect(route("localhost:8080", "/metrics", router: without) == .notFound("not found"))
        #expect(route("\(Self.id).localhost:8080", "/metrics") == site(["metrics"]))
        let single = RequestRouter(siteAtRoot: Self.id, hasMetrics: true, port: 8080)
        #expect(route("example.test", "/metrics", router: single) == site(["metrics"], immutable: false))
        #expect(route("localhost", "/metrics", router: single) == .metrics)
    }

    @Test func eachSiteItsOwnOrigin() {
        #expect(route("\(Self.id).localhost:8080", "/") == site([""]))
        #expect(route("\(Self.id).LOCALHOST.:8080", "/css/a.css?v=1") == site(["css", "a.css"], query: "v=1"))
        #expect(route("\(Self.hex).localhost", "/docs/") == site(["docs", ""], label: Self.hex))
        #expect(route(.post, "\(Self.id).localhost", "/") == .methodNotAllowed(allow: "GET, HEAD"))
        #expect(route("\(Self.id).localhost", "/a/../b") == .badRequest("bad path: \(SitePath.Problem.dotSegment.description)"))
        #expect(route("nosuch.localhost", "/") == .notFound("unknown site 'nosuch'"))
        #expect(route("\(Self.id.uppercased()).localhost", "/") == site([""]))  // host names are case-insensitive
    }

    @Test func sitesByPath() {
        // On a loopback name: to the site's own origin, query kept.
        #expect(route("localhost:8080", "/site/\(Self.id)/docs/a.txt?x=1")
            == .toSiteOrigin(SiteRef(id: Self.id, label: Self.id), location: "http://\(Self.id).localhost:8080/docs/a.txt?x=1"))
        #expect(route("127.0.0.1", "/site/\(Self.hex)")
            == .toSiteOrigin(SiteRef(id: Self.id, label: Self.hex), location: "http://\(Self.id).localhost:8080/"))
        // Any other name: served in place.
        #expect(route("example.test", "/site/\(Self.id)/docs/a.txt") == site(["docs", "a.txt"]))
        #expect(route("example.test", "/site/\(Self.id)?q") == .redirect("/site/\(Self.id)/?q"))
        #expect(route("example.test", "/site/\(Self.id.uppercased())/") == .notFound("unknown site '\(Self.id.uppercased())'"))
        #expect(route("example.test", "/site/\(Self.id)/%2e%2e/x") == .badRequest("bad path: \(SitePath.Problem.dotSegment.description)"))
        #expect(route(.post, "example.test", "/site/\(Self.id)/") == .methodNotAllowed(allow: "GET, HEAD"))
    }

    @Test func theSingleSiteAtTheRoot() {
        let single = RequestRouter(siteAtRoot: Self.id, hasMetrics: false, port: 8080)
        #expect(route("example.test", "/", router: single) == site([""], immutable: false))
        #expect(route("192.0.2.1:8080", "/a.txt", router: single) == site(["a.txt"], immutable: false))
        #expect(route("localhost:8080", "/", router: single) == .statusPage)
        #expect(route("example.test", "/", router: router) == .statusPage)
    }

    @Test func requestsNoSiteCouldAnswer() {
        #expect(router.route(method: .get, hosts: ["a.test", "b.test"], target: "/") == .badRequest("more than one Host header"))
        #expect(router.route(method: .get, hosts: [], target: "/") == .statusPage)
        #expect(route("localhost", "/" + String(repeating: "a", count: SitePath.maxLength)) == .uriTooLong)
    }
}
