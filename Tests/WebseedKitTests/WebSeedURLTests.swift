import Testing
@testable import WebseedKit

/// Which web seeds a download uses, and which redirects the HTTP side may follow.
@Suite struct WebSeedURLTests {
    func context(offline: Bool) -> (EngineContext, EventFieldsTests.Output) {
        var configuration = EngineConfiguration(listen: .init(host: "127.0.0.1", port: 0, text: "127.0.0.1:0"), stateDirectory: "/nonexistent")
        configuration.offline = offline
        let out = EventFieldsTests.Output()
        return (EngineContext(configuration: configuration, log: EventSink(json: true, console: out.console), seeder: nil), out)
    }

    @Test func offlineKeepsOnlyWebSeedsOnThisHostAndEachOnce() {
        let (c, out) = context(offline: true)
        let urls = ["http://127.0.0.1:8080/s/", "http://localhost/s/", "https://[::1]:8443/s/", "http://example.org/s/",
                    "ftp://127.0.0.1/s/", "http://127.0.0.1:8080/s/"]
        #expect(c.usableWebSeeds(urls) == ["http://127.0.0.1:8080/s/", "http://localhost/s/", "https://[::1]:8443/s/"])
        let skipped = out.take()
        #expect(skipped.count == 2)
        #expect(skipped.first?.contains(#""url":"http://example.org/s/""#) == true)
        #expect(skipped.last?.contains(#""url":"ftp://127.0.0.1/s/""#) == true)
    }

    @Test func onlineUsesEveryHTTPWebSeed() {
        let (c, _) = context(offline: false)
        #expect(c.usableWebSeeds(["http://example.org/s/", "https://mirror.example/s"]) == ["http://example.org/s/", "https://mirror.example/s"])
    }

    @Test func redirectsAreFollowedOnlyWhereWebSeedsAreUsed() {
        #expect(WebSeedClient(offline: true).mayFetch("http://127.0.0.1:9/x"))
        #expect(!WebSeedClient(offline: true).mayFetch("http://example.org/x"))
        #expect(WebSeedClient(offline: false).mayFetch("https://example.org/x"))
        #expect(!WebSeedClient(offline: false).mayFetch("file:///etc/passwd"))
    }
}
