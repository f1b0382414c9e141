@testable import Swarm
import Testing
@testable import WebseedKit

/// The `web_seed_*` events, byte for byte (a published format, like `EventFieldsTests`),
/// and their text lines.
@Suite struct WebSeedEventFieldsTests {
    typealias Output = EventFieldsTests.Output

    func json(_ call: (EventSink) -> Void) -> [String] {
        let out = Output()
        call(EventSink(json: true, style: .downloading, console: out.console))
        #expect(out.stderr.isEmpty, "JSON lines go to stdout only")
        return out.take()
    }

    @Test func jsonFields() {
        #expect(json { $0.fetchEvent(.webSeedDropped(url: "http://127.0.0.1:8080/s/", reason: "HTTP 404 for http://127.0.0.1:8080/s/site/a.html", retryIn: nil)) } == [
            #"{"event":"web_seed_dropped","reason":"HTTP 404 for http://127.0.0.1:8080/s/site/a.html","url":"http://127.0.0.1:8080/s/"}"# + "\n"])
        #expect(json { $0.fetchEvent(.webSeedDropped(url: "http://127.0.0.1:8080/s/", reason: "sent nothing for 20 s", retryIn: 30)) } == [
            #"{"event":"web_seed_dropped","reason":"sent nothing for 20 s","retry_in":30.000,"url":"http://127.0.0.1:8080/s/"}"# + "\n"])
        #expect(json { $0.webSeedSkipped("ftp://example.org/s/", reason: "webseed downloads from http:// and https:// web seeds only") } == [
            #"{"event":"web_seed_skipped","reason":"webseed downloads from http:// and https:// web seeds only","url":"ftp://example.org/s/"}"# + "\n"])
    }

    @Test func textLines() {
        let out = Output()
        let sink = EventSink(json: false, console: out.console)
        sink.fetchEvent(.webSeedDropped(url: "http://127.0.0.1:8080/s/", reason: "sent nothing for 20 s", retryIn: 30))
        sink.webSeedSkipped("http://example.org/s/", reason: "--offline: only web seeds on this host are used")
        #expect(out.stderr == ["webseed: warning: web seed http://127.0.0.1:8080/s/ dropped: sent nothing for 20 s; trying it again in 30 s\n"])
        #expect(out.stdout == ["web seed http://example.org/s/ not used: --offline: only web seeds on this host are used\n"])
    }
}
