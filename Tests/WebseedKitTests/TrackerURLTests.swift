import Testing
@testable import WebseedKit

@Suite struct TrackerURLTests {
    @Test func httpHTTPSAndUDPTrackersAreRead() throws {
        let h = try #require(TrackerURL("http://tracker.example:6969/announce?passkey=x"))
        #expect(h.kind == .http && h.host == "tracker.example" && h.port == 6969)
        #expect(try #require(TrackerURL("https://T.example/announce")).port == 443)
        #expect(try #require(TrackerURL("http://127.0.0.1/announce")).port == 80)
        let u = try #require(TrackerURL("udp://[::1]:1337/announce"))
        #expect(u.kind == .udp && u.host == "::1" && u.port == 1337)
    }

    @Test(arguments: ["wss://tracker.example", "udp://tracker.example", "http://:80/", "http://h:0/", "http://h:99999/",
                      "udp://[::1/", "ftp://h/", "tracker.example:6969"])
    func whatWebseedCannotAnnounceToIsRefused(_ text: String) {
        #expect(TrackerURL(text) == nil)
    }

    @Test func onlyLoopbackTrackersAreOnThisHost() {
        for local in ["http://127.0.0.1:1/a", "udp://localhost:1", "http://[::1]:1/a", "http://t.localhost/a"] {
            #expect(TrackerURL(local)?.isOnThisHost == true, "\(local)")
        }
        for far in ["http://192.0.2.1/a", "udp://tracker.example:1", "http://10.0.0.1/a"] {
            #expect(TrackerURL(far)?.isOnThisHost == false, "\(far)")
        }
    }
}
