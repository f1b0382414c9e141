import Hummingbird
import HummingbirdTesting
import Prometheus
import Testing
@testable import Gateway

/// The gateway's answers counted by status, into the registry it is given.
@Suite struct RequestCounterTests {
    @Test func answersAreCountedByStatus() async throws {
        let site = try FakeSite(files: ["index.html": content(1, 100)])
        let sites = GatewaySites()
        sites.add(site)
        let registry = PrometheusCollectorRegistry()
        var options = GatewayOptions()
        options.metrics = { registry.emitToString() }
        let counter = RequestCounter<GatewayRequestContext>(factory: PrometheusMetricsFactory(registry: registry))
        let gateway = OverTheWire(gateway: GatewayResponder(sites: sites, options: options, port: { 8080 }))
        let app = Application(responder: CallbackResponder { request, context in
            try await counter.handle(request, context: context, next: gateway.respond)
        })
        let host = "\(site.id).localhost:8080"
        try await app.test(.router) { client in
            for path in ["/", "/index.html", "/missing.js"] {
                try await client.execute(uri: path, method: .get, headers: hostField(host)) { _ in }
            }
            try await client.execute(uri: "/", method: .post, headers: hostField(host)) { _ in }
            try await client.execute(uri: "/metrics", method: .get, headers: hostField("localhost:8080")) { r in
                let text = String(buffer: r.body)
                #expect(text.contains("# TYPE webseed_http_requests_total counter\n"))
                #expect(text.contains("webseed_http_requests_total{status=\"200\"} 2\n"))
                #expect(text.contains("webseed_http_requests_total{status=\"404\"} 1\n"))
                #expect(text.contains("webseed_http_requests_total{status=\"405\"} 1\n"))
            }
        }
        #expect(registry.emitToString().contains("webseed_http_requests_total{status=\"200\"} 3\n"), "the scrape itself is counted")
    }
}
