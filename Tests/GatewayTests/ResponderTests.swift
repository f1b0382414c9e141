import Locking
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Metainfo
import NIOCore
import Testing
@testable import Gateway

/// The responder in process (no sockets), over in-memory sites.
@Suite struct ResponderTests {
    let site: FakeSite
    let index = content(1, 3000)
    let big = content(2, 3 * 16_384 + 100)

    init() throws {
        site = try FakeSite(files: ["index.html": index, "big.bin": big, "docs/a.txt": content(3, 10), "404.html": content(4, 20)])
    }

    func run(_ sites: GatewaySites, _ options: GatewayOptions = GatewayOptions(),
             _ test: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = Application(responder: OverTheWire(gateway: GatewayResponder(sites: sites, options: options, port: { 8080 })))
        try await app.test(.router, test)
    }

    func sites(_ content: any SiteContent...) -> GatewaySites {
        let sites = GatewaySites()
        for c in content { sites.add(c) }
        return sites
    }

    @Test func aSiteOnItsOwnOrigin() async throws {
        let host = "\(site.id).localhost:8080"
        let (index, big, root) = (index, big, site.torrent.files[site.file("index.html")].piecesRoot!.hex)
        try await run(sites(site)) { client in
            try await client.execute(uri: "/", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .ok)
                #expect(Array(buffer: r.body) == index)
                #expect(r.headers[.contentType] == "text/html; charset=utf-8")
                #expect(r.headers[.eTag] == "\"\(root)\"")
                #expect(r.headers[.cacheControl] == "public, max-age=31536000, immutable")
            }
            try await client.execute(uri: "/big.bin", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .ok && Array(buffer: r.body) == big, "several chunks, in order")
            }
            try await client.execute(uri: "/big.bin", method: .get, headers: hostField(host, ["Range": "bytes=16000-40000"])) { r in
                #expect(r.status == .partialContent)
                #expect(r.headers[.contentRange] == "bytes 16000-40000/\(big.count)")
                #expect(Array(buffer: r.body) == Array(big[16000...40000]))
            }
            #expect(site.asked.withLock { $0.last.map { "\($0.file) \($0.range)" } } == "\(site.file("big.bin")) 16000..<40001",
                    "the content is asked for the range only (its pieces go first)")
            try await client.execute(uri: "/", method: .get, headers: hostField(host, ["If-None-Match": "\"\(root)\""])) { r in
                #expect(r.status == .notModified && r.body.readableBytes == 0)
            }
            try await client.execute(uri: "/", method: .head, headers: hostField(host)) { r in
                #expect(r.status == .ok && r.body.readableBytes == 0 && r.headers[.contentLength] == String(index.count))
            }
            try await client.execute(uri: "/docs?x=1", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .movedPermanently && r.headers[.location] == "docs/?x=1")
            }
            try await client.execute(uri: "/docs/", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .ok && String(buffer: r.body).contains("href=\"a.txt\""))
            }
            try await client.execute(uri: "/missing", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .notFound && Array(buffer: r.body) == content(4, 20), "the site's own 404 page")
            }
            try await client.execute(uri: "/", method: .post, headers: hostField(host)) { r in
                #expect(r.status == .methodNotAllowed && r.headers[.allow] == "GET, HEAD")
            }
        }
    }

    @Test func byPathAndAtTheRoot() async throws {
        let (id, index) = (site.id, index)
        var options = GatewayOptions()
        options.singleSiteAtRoot = true
        try await run(sites(site), options) { client in
            try await client.execute(uri: "/site/\(id)/docs/a.txt?v=2", method: .get, headers: hostField("localhost:8080")) { r in
                #expect(r.status == .movedPermanently && r.headers[.location] == "http://\(id).localhost:8080/docs/a.txt?v=2")
            }
            try await client.execute(uri: "/site/\(id)/", method: .get, headers: hostField("example.test")) { r in
                #expect(r.status == .ok && Array(buffer: r.body) == index && r.headers[.cacheControl] == "public, max-age=31536000, immutable")
            }
            try await client.execute(uri: "/", method: .get, headers: hostField("example.test")) { r in
                #expect(r.status == .ok && Array(buffer: r.body) == index && r.headers[.cacheControl] == "no-cache")
            }
            let unknown = String(repeating: "a", count: 52)
            try await client.execute(uri: "/site/\(unknown)/", method: .get, headers: hostField("localhost:8080")) { r in
                #expect(r.status == .notFound && String(buffer: r.body) == "unknown site '\(unknown)'\n", "not moved to an origin that has nothing")
            }
            try await client.execute(uri: "/", method: .get, headers: hostField("\(unknown).localhost")) { r in
                #expect(r.status == .notFound)
            }
        }
    }

    @Test func theGatewaysOwnPages() async throws {
        let id = site.id
        var options = GatewayOptions()
        options.metrics = { "webseed_sites 1\n" }
        options.trackers = {
            [TrackerState(url: "udp://127.0.0.1:6969", site: "site", hash: String(repeating: "ab", count: 20), state: "failing",
                          lastError: "the tracker refused: <not listed>", peers: nil, secondsAgo: 3)]
        }
        try await run(sites(site), options) { client in
            try await client.execute(uri: "/", method: .get, headers: hostField("localhost:8080")) { r in
                let page = String(buffer: r.body)
                #expect(r.status == .ok && r.headers[.cacheControl] == "no-store" && page.contains(id))
                #expect(page.contains("udp://127.0.0.1:6969") && page.contains("failing") && page.contains("&lt;not listed&gt;"),
                        "each tracker's state and last error, escaped")
            }
            try await client.execute(uri: "/api/status", method: .get, headers: hostField("localhost:8080")) { r in
                let text = String(buffer: r.body)
                #expect(r.status == .ok && text.contains("\"site_id\":\"\(id)\"") && text.contains("\"peers\":2"))
                #expect(text.contains("\"trackers\":[{\"url\":\"udp://127.0.0.1:6969\",\"site\":\"site\",\"hash\":\"abab")
                        && text.contains("\"state\":\"failing\",\"last_error\":\"the tracker refused: <not listed>\",\"peers\":null,\"last_announce_seconds_ago\":3}"))
            }
            try await client.execute(uri: "/metrics", method: .get, headers: hostField("localhost:8080")) { r in
                #expect(r.status == .ok && r.headers[.contentType] == "text/plain; version=0.0.4" && String(buffer: r.body) == "webseed_sites 1\n")
            }
            try await client.execute(uri: "/metrics", method: .get, headers: hostField("\(id).localhost:8080")) { r in
                #expect(r.status == .notFound && !String(buffer: r.body).contains("webseed_sites"), "a site's origin has no metrics")
            }
        }
        try await run(sites(site)) { client in
            try await client.execute(uri: "/metrics", method: .get, headers: hostField("localhost:8080")) { r in
                #expect(r.status == .notFound)
            }
        }
    }

    @Test func addingASiteByMagnet() async throws {
        let other = try FakeSite(name: "other", files: ["index.html": content(9, 100)])
        let sites = GatewaySites { _ in other }
        let magnet = MagnetLink(v2InfoHash: other.torrent.v2InfoHash!).uri
        let id = other.id
        try await run(sites) { client in
            let body = ByteBuffer(string: "{\"magnet\":\"\(magnet)\"}")
            try await client.execute(uri: "/api/sites", method: .post, headers: hostField("localhost:8080", ["Content-Type": "application/json"]), body: body) { r in
                #expect(r.status == .created && String(buffer: r.body).contains(id))
            }
            try await client.execute(uri: "/", method: .get, headers: hostField("\(id).localhost:8080")) { r in
                #expect(r.status == .ok && Array(buffer: r.body) == content(9, 100))
            }
        }
    }

    @Test func moreThanOneHostIsRefused() async throws {
        try await run(sites(site)) { client in
            let h = HTTPField.Name("Host")!
            try await client.execute(uri: "/", method: .get, headers: HTTPFields([HTTPField(name: h, value: "a.test"), HTTPField(name: h, value: "b.test")])) { r in
                #expect(r.status == .badRequest)
            }
        }
    }

    // MARK: the invariant: only verified bytes, or an error

    @Test func aFileChangedBeforeTheRequestIsAnErrorNamingIt() async throws {
        site.corrupt("index.html", at: 5)
        let reported = Locked<[String]>([])
        var options = GatewayOptions()
        options.onFileChanged = { name, path in reported.withLock { $0.append(name + ":" + path) } }
        let host = "\(site.id).localhost"
        try await run(sites(site), options) { client in
            try await client.execute(uri: "/index.html", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .badGateway && String(buffer: r.body).hasPrefix("index.html cannot be served: index.html changed on disk"))
            }
            try await client.execute(uri: "/", method: .head, headers: hostField(host)) { r in
                #expect(r.status == .badGateway, "HEAD answers what GET would")
            }
        }
        #expect(reported.withLock { $0 } == ["site:index.html", "site:index.html"])
    }

    @Test func aFileThatFailsLaterIsCutOffNeverSentWrong() async throws {
        site.corrupt("big.bin", at: 40_000)
        let host = "\(site.id).localhost"
        try await run(sites(site)) { client in
            // The body fails after its status line: the router test client sees the error
            // the server would answer by closing the connection short of Content-Length.
            await #expect(throws: (any Error).self) {
                try await client.execute(uri: "/big.bin", method: .get, headers: hostField(host))
            }
            try await client.execute(uri: "/big.bin", method: .get, headers: hostField(host, ["Range": "bytes=0-100"])) { r in
                #expect(r.status == .partialContent, "the bytes before the change still verify")
            }
        }
    }

    @Test func contentThatYieldsTooMuchIsNotPassedOn() async throws {
        let liar = OverlongSite(site: site)
        try await run(sites(liar)) { client in
            try await client.execute(uri: "/docs/a.txt", method: .get, headers: hostField("\(site.id).localhost")) { r in
                #expect(r.status == .badGateway && !String(buffer: r.body).contains("AAAAAAAAAAA"))
            }
        }
    }

    @Test func contentThatDoesNotArriveInTimeIs504() async throws {
        let slow = try FakeSite(files: ["index.html": content(5, 10)], delay: nil)
        var options = GatewayOptions()
        options.timeout = 0.2
        try await run(sites(slow), options) { client in
            try await client.execute(uri: "/", method: .get, headers: hostField("\(slow.id).localhost")) { r in
                #expect(r.status == .gatewayTimeout && String(buffer: r.body).contains("did not arrive from peers within 0 s"))
            }
        }
    }
}

/// Does what the HTTP/1 server does before the responder sees a request: the first Host
/// field becomes the authority (the router test client always sends "localhost").
struct OverTheWire: HTTPResponder {
    typealias Context = GatewayRequestContext
    let gateway: GatewayResponder

    func respond(to request: Request, context: Context) async throws -> Response {
        var head = request.head
        if let i = head.headerFields.firstIndex(where: { $0.name.canonicalName == "host" }) {
            head.authority = head.headerFields[i].value
            head.headerFields.remove(at: i)
        }
        return try await gateway.respond(to: Request(head: head, body: request.body), context: context)
    }
}

func hostField(_ host: String, _ more: [String: String] = [:]) -> HTTPFields {
    var fields = HTTPFields([HTTPField(name: HTTPField.Name("Host")!, value: host)])
    for (name, value) in more { fields.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
    return fields
}
