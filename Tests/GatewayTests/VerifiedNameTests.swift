import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
@testable import Gateway

/// Verified mode on a name's origin: the bootstrap for navigations, the worker's routes
/// answered from the version served, and `/.webseed/item`, the version's signed item as the
/// worker checks it. (The worker's checks: Tools/tests/verified_js.js and
/// Tools/interop/verified_names.py.)
@Suite struct VerifiedNameTests {
    static let name = NameRouteTests.name
    let host = "\(Self.name).localhost:8080"
    let v1: FakeSite
    let v2: FakeSite

    init() throws {
        v1 = try FakeSite(name: "site", files: ["index.html": Array("version 1".utf8)])
        v2 = try FakeSite(name: "site", files: ["index.html": Array("version 2".utf8)])
    }

    func run(_ names: GatewayNames, verify: Bool = true, _ test: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let sites = GatewaySites()
        sites.add(v1)
        sites.add(v2)
        var options = GatewayOptions()
        options.verifyInBrowser = verify
        let app = Application(responder: OverTheWire(gateway: GatewayResponder(sites: sites, names: names, options: options, port: { 8080 })))
        try await app.test(.router, test)
    }

    @Test func theItemOfTheVersionServedIsNeverCachedAndReadableByOtherOrigins() async throws {
        let names = GatewayNames(follower: FakeFollower())
        names.add(Self.name)
        let item1 = Array("d1:k32:...e".utf8), item2 = Array("d1:k32:,,,e".utf8)
        names.serve(Self.name, .init(siteID: v1.id, seq: 1, item: item1))
        let (host, v2) = (host, v2)
        try await run(names) { client in
            try await client.execute(uri: "/.webseed/item", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .ok && Array(buffer: r.body) == item1)
                #expect(r.headers[.cacheControl] == "no-store", "the next version replaces it")
                #expect(r.headers[.accessControlAllowOrigin] == "*")
            }
            names.serve(Self.name, .init(siteID: v2.id, seq: 2, item: item2))
            try await client.execute(uri: "/.webseed/item", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .ok && Array(buffer: r.body) == item2, "the item of the version served now")
            }
        }
    }

    @Test func aVersionWithoutItsItemAnswers404() async throws {
        let names = GatewayNames(follower: FakeFollower())
        names.add(Self.name)
        names.serve(Self.name, .init(siteID: v1.id, seq: 1))
        let host = host
        try await run(names) { client in
            try await client.execute(uri: "/.webseed/item", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .notFound)
            }
        }
    }

    @Test func navigationsGetTheBootstrapAndTheWorkerItsRoutes() async throws {
        let names = GatewayNames(follower: FakeFollower())
        names.add(Self.name)
        names.serve(Self.name, .init(siteID: v1.id, seq: 1, item: [1]))
        let (host, v1) = (host, v1)
        try await run(names) { client in
            try await client.execute(uri: "/", method: .get, headers: hostField(host, ["Sec-Fetch-Mode": "navigate"])) { r in
                #expect(r.status == .ok && String(buffer: r.body).contains(#"register("/.webseed/sw.js", { scope: "/" })"#))
            }
            try await client.execute(uri: "/.webseed/sw.js", method: .get, headers: hostField(host, ["Service-Worker": "script"])) { r in
                #expect(r.status == .ok && String(buffer: r.body).contains("async function originSite("), "names.js is in the worker")
            }
            try await client.execute(uri: "/.webseed/info", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .ok && Array(buffer: r.body) == v1.torrent.infoBytes)
            }
            try await client.execute(uri: "/", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .ok && String(buffer: r.body) == "version 1", "a client that does not navigate: the plain answer")
            }
        }
    }

    @Test func inPlainModeTheItemRouteIsNotThere() async throws {
        let names = GatewayNames(follower: FakeFollower())
        names.add(Self.name)
        names.serve(Self.name, .init(siteID: v1.id, seq: 1, item: [1]))
        let host = host
        try await run(names, verify: false) { client in
            try await client.execute(uri: "/.webseed/item", method: .get, headers: hostField(host)) { r in
                #expect(r.status == .notFound)
            }
        }
    }
}
