import Hashing
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Metainfo
import NIOCore
import Testing
@testable import Gateway

/// Verified mode's gateway side: the bootstrap page for navigations, the worker's script,
/// the info dict and piece layers it checks, the site's own worker refused; everything else
/// as in plain mode. (The worker itself: Tools/tests/verified_js.js and
/// Tools/interop/verified_browser.py.)
@Suite struct VerifiedModeTests {
    let site: FakeSite
    let index = content(1, 3000)
    let big = content(2, 3 * 16_384 + 100)

    init() throws {
        site = try FakeSite(files: ["index.html": index, "big.bin": big, "404.html": content(4, 20)])
    }

    func run(verify: Bool, _ test: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let sites = GatewaySites()
        sites.add(site)
        var options = GatewayOptions()
        options.verifyInBrowser = verify
        let app = Application(responder: OverTheWire(gateway: GatewayResponder(sites: sites, options: options, port: { 8080 })))
        try await app.test(.router, test)
    }

    @Test func navigationsGetTheBootstrapOtherRequestsTheBytes() async throws {
        let host = "\(site.id).localhost:8080"
        let index = index
        try await run(verify: true) { client in
            for path in ["/", "/big.bin", "/missing"] {
                try await client.execute(uri: path, method: .get, headers: hostField(host, ["Sec-Fetch-Mode": "navigate"])) { r in
                    #expect(r.status == .ok && r.headers[.contentType] == "text/html; charset=utf-8" && r.headers[.cacheControl] == "no-store")
                    #expect(String(buffer: r.body).contains(#"register("/.webseed/sw.js", { scope: "/" })"#), "\(path): the bootstrap")
                }
            }
            // The worker's own requests (and any client that is not navigating): plain bytes.
            try await client.execute(uri: "/index.html", method: .get, headers: hostField(host, ["Sec-Fetch-Mode": "cors"])) { r in
                #expect(r.status == .ok && Array(buffer: r.body) == index)
                #expect(r.headers[.accessControlAllowOrigin] == "*", "hash-addressed bytes: readable by other origins' workers")
            }
            try await client.execute(uri: "/", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .ok && Array(buffer: r.body) == index)
            }
        }
    }

    /// A name's worker reads each version from its site id's origin; when this gateway no
    /// longer holds that version it must read the 404 (and say so), not a network error.
    @Test func anUnknownSiteIsA404OtherOriginsCanRead() async throws {
        let unknown = String(repeating: "a", count: 52)
        for verify in [true, false] {
            try await run(verify: verify) { client in
                try await client.execute(uri: "/.webseed/info", method: .get, headers: hostField("\(unknown).localhost:8080", ["Sec-Fetch-Mode": "cors"])) { r in
                    #expect(r.status == .notFound && String(buffer: r.body) == "unknown site '\(unknown)'\n")
                    #expect(r.headers[.accessControlAllowOrigin] == (verify ? "*" : nil))
                }
            }
        }
    }

    @Test func theWorkerScript() async throws {
        let host = "\(site.id).localhost:8080"
        try await run(verify: true) { client in
            let first = try await client.execute(uri: "/.webseed/sw.js", method: .get, headers: hostField(host, ["Service-Worker": "script"])) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType] == "text/javascript; charset=utf-8")
                #expect(r.headers[HTTPField.Name("Service-Worker-Allowed")!] == "/", "the script controls the whole origin")
                let text = String(buffer: r.body)
                #expect(text.hasPrefix("const WEBSEED_MIME = {\"text\":{"))
                #expect(text.contains("\"css\":\"text/css\"") && text.contains("\"png\":\"image/png\""), "the gateway's content types")
                #expect(text.contains("const WEBSEED_SPA = false;"))
                for part in ["function bdecode(", "async function layerRoot(", "class SiteFiles", "self.addEventListener(\"fetch\""] {
                    #expect(text.contains(part), "\(part) in the script")
                }
                return text
            }
            let again = try await client.execute(uri: "/.webseed/sw.js", method: .get, headers: hostField(host)) { String(buffer: $0.body) }
            #expect(first == again, "the same bytes every time (browsers compare them for updates)")
        }
    }

    @Test func sourcesAreWrittenIntoTheScriptAsJSON() {
        #expect(BrowserScripts.jsonArray([]) == "[]")
        #expect(BrowserScripts.jsonArray(["http://{site}.localhost:8081", "https://a.example/x"]) == #"["http://{site}.localhost:8081","https://a.example/x"]"#)
        // Nothing a source could hold ends the string or the script.
        #expect(BrowserScripts.jsonArray(["a\"b\\c</script>\u{1}é😀"]) == #"["a\u0022b\u005cc\u003c/script>\u0001\u00e9\ud83d\ude00"]"#)
        #expect(BrowserScripts.worker(spa: true, sources: ["http://x"]).contains("const WEBSEED_SPA = true;\nconst WEBSEED_SOURCES = [\"http://x\"];\n"))
    }

    @Test func theInfoDictAndPieceLayers() async throws {
        let host = "\(site.id).localhost:8080"
        let torrent = site.torrent
        let bigRoot = torrent.files[site.file("big.bin")].piecesRoot!
        let indexRoot = torrent.files[site.file("index.html")].piecesRoot!
        try await run(verify: true) { client in
            try await client.execute(uri: "/.webseed/info", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .ok && r.headers[.cacheControl] == "public, max-age=31536000, immutable")
                #expect(Array(buffer: r.body) == torrent.infoBytes)
                #expect(Digests.sha256(Array(buffer: r.body)) == torrent.v2InfoHash, "hashes to the site id")
            }
            try await client.execute(uri: "/.webseed/layer/\(bigRoot.hex)", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .ok && r.headers[.accessControlAllowOrigin] == "*")
                #expect(Array(buffer: r.body) == torrent.pieceLayers[bigRoot]!.flatMap(\.bytes))
                #expect(r.body.readableBytes == 4 * 32, "one hash per 16 KiB piece")
            }
            try await client.execute(uri: "/.webseed/layer/\(indexRoot.hex)", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .notFound, "a file of one piece has no layer")
            }
            try await client.execute(uri: "/.webseed/webseeds", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .ok && r.headers[.contentType] == "application/json; charset=utf-8" && String(buffer: r.body) == "[]",
                        "a torrent without web seeds")
            }
            for path in ["/.webseed/layer/xyz", "/.webseed/nothing", "/.webseed/"] {
                try await client.execute(uri: path, method: .get, headers: hostField(host)) { r in
                    #expect(r.status == .notFound, "\(path)")
                }
            }
        }
    }

    @Test func aSitesOwnWorkerIsRefused() async throws {
        let host = "\(site.id).localhost:8080"
        try await run(verify: true) { client in
            try await client.execute(uri: "/index.html", method: .get, headers: hostField(host, ["Service-Worker": "script"])) { r in
                #expect(r.status == .forbidden && String(buffer: r.body).contains("site's own service worker is not installed"))
            }
        }
    }

    @Test func plainModeAndOtherOriginsAreUnchanged() async throws {
        let (id, index, notFound) = (site.id, index, content(4, 20))
        try await run(verify: false) { client in
            try await client.execute(uri: "/", method: .get, headers: hostField("\(id).localhost:8080", ["Sec-Fetch-Mode": "navigate"])) { r in
                #expect(r.status == .ok && Array(buffer: r.body) == index)
                #expect(r.headers[.accessControlAllowOrigin] == nil)
            }
            try await client.execute(uri: "/.webseed/info", method: .get, headers: hostField("\(id).localhost:8080")) { r in
                #expect(r.status == .notFound && Array(buffer: r.body) == notFound, "the site's own 404 page")
            }
        }
        try await run(verify: true) { client in
            // Served in place on a host that is not the site's own origin: the worker's
            // scope would be another site's too, so plain.
            try await client.execute(uri: "/site/\(id)/", method: .get, headers: hostField("example.net", ["Sec-Fetch-Mode": "navigate"])) { r in
                #expect(r.status == .ok && Array(buffer: r.body) == index)
            }
        }
    }
}
