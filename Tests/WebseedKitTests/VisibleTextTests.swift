import Metainfo
@testable import Swarm
import Testing
@testable import WebseedKit

/// Issue 16, finding 5: what a torrent, magnet, peer or HTTP request says is printed escaped.
@Suite struct VisibleTextTests {
    @Test func controlCharactersSeparatorsAndBidiControlsAreShownAsEscapes() {
        #expect(visible("a\u{1b}]0;t\u{07}b") == "a\\u{1b}]0;t\\u{7}b")
        #expect(visible("\r\n\t\u{0}") == "\\u{d}\\u{a}\\u{9}\\u{0}")
        #expect(visible("\u{7f}\u{80}\u{9b}\u{9f}") == "\\u{7f}\\u{80}\\u{9b}\\u{9f}")
        #expect(visible("x\u{2028}y\u{2029}") == "x\\u{2028}y\\u{2029}")
        #expect(visible("\u{202e}gpj.exe\u{202c}\u{2066}\u{2069}\u{200f}\u{61c}") == "\\u{202e}gpj.exe\\u{202c}\\u{2066}\\u{2069}\\u{200f}\\u{61c}")
    }

    @Test func printableTextIsUnchanged() {
        for s in ["", "index.html", "café/日本語 ✓", "http://t.example/announce?x=1&y=2", "a\\u{1b}", "\u{a0}\u{ff}\u{2030}"] {
            #expect(visible(s) == s)
        }
    }

    @Test func escapingTwiceChangesNothing() {
        let once = visible("\u{1b}[2J\n\u{202e}")
        #expect(visible(once) == once)
    }

    @Test func jsonEscapesTheSameCharacters() {
        #expect(JSON.string("a\u{1b}\u{7f}\u{9b}\u{2028}\u{202e}\n").text == "\"a\\u001b\\u007f\\u009b\\u2028\\u202e\\n\"")
        #expect(JSON.string("café ✓").text == "\"café ✓\"")
    }

    @Test func creationDatesOutsideYears1970To9999AreTheNumber() {
        #expect(creationDateText(1_700_000_000) == "2023-11-14T22:13:20Z")
        #expect(creationDateText(0) == "1970-01-01T00:00:00Z")
        #expect(creationDateText(253_402_300_799) == "9999-12-31T23:59:59Z")
        #expect(creationDateText(Int64.max) == "9223372036854775807 (seconds since 1970; not a date in 1970–9999)")
        #expect(creationDateText(-1_000_000_000_000) == "-1000000000000 (seconds since 1970; not a date in 1970–9999)")
        #expect(creationDateText(253_402_300_800).hasPrefix("253402300800 ("))
    }

    /// The engine's text lines: what a peer or a torrent says stays on its one line.
    @Test func textLinesAndWarningsShowWhatPeersSayEscaped() throws {
        let out = EventFieldsTests.Output()
        let sink = EventSink(json: false, console: out.console)
        sink.fetchEvent(.peerBanned(address: "10.0.0.1:1\nwebseed: error: forged", reason: .layerHashes(path: "lied\u{1b}[2J")))
        sink.seederEvent(.fileChanged(torrent: "site\u{202e}", path: "a\r.js"))
        let site = try LocalSite(["index.html": [1, 2, 3]])
        sink.fetchEvent(.metadata(site.torrent.metainfo, directory: "/d\u{7}", from: "1.2.3.4:5\u{1b}]0;t\u{7}"))
        #expect(out.stderr == ["webseed: warning: banned 10.0.0.1:1\\u{a}webseed: error: forged: hashes for lied\\u{1b}[2J do not match its pieces root\n",
                               "webseed: warning: site\\u{202e}: a\\u{d}.js changed on disk since it was verified; its pieces are no longer served\n"])
        #expect(out.stdout.count == 1)
        #expect(out.stdout.first?.hasSuffix(" (metadata from 1.2.3.4:5\\u{1b}]0;t\\u{7}) → /d\\u{7}\n") == true, "\(out.stdout)")
    }
}
