import Locking
import Foundation
import Hashing
import Names
import Signing
import Testing
@testable import WebseedKit

/// The `--json` events of `seed --key`, byte for byte (as `EventFieldsTests` pins the others):
/// seed_names.py and users read them.
@Suite struct NameEventFieldsTests {
    final class Output: Sendable {
        let lines = Locked<[(stream: Console.Stream, text: String)]>([])
        var console: Console { Console { stream, text in self.lines.withLock { $0.append((stream, text)) } } }
        func take() -> [(stream: Console.Stream, text: String)] { lines.withLock { l in defer { l = [] }; return l } }
    }

    let site: LocalSite
    let key: Ed25519PublicKey
    let record: SiteRecord

    init() throws {
        site = try LocalSite(["index.html": Array(repeating: 7, count: 500)])
        key = try Ed25519PrivateKey(seed: Array(repeating: 1, count: 32)).publicKey
        record = try #require(SiteRecord(metainfo: site.torrent.metainfo))
    }

    func lines(json: Bool, _ call: (EventSink) -> Void) -> [(stream: Console.Stream, text: String)] {
        let out = Output()
        call(EventSink(json: json, console: out.console))
        return out.take()
    }

    @Test func publishedOutbidNotReachedAndRetired() {
        let name = SiteName.name(for: key), magnet = SiteName.magnet(for: key)
        let published = #"{"event":"name_published","ih":"\#(HexCoding.encode(record.ih))","magnet":"\#(magnet)","name":"\#(name)","refresh":false,"#
            + #""sent_to":8,"seq":3,"site_id":"\#(record.siteID)","v2_infohash":"\#(record.v2.hex)"}"# + "\n"
        #expect(lines(json: true) { $0.namePublished(key, record: record, seq: 3, sentTo: 8, refresh: false) }.map(\.text) == [published])
        #expect(lines(json: true) { $0.nameNotReached(key, seq: 3) }.map(\.text)
                == [#"{"event":"name_put","name":"\#(name)","sent_to":0,"seq":3}"# + "\n"])
        #expect(lines(json: true) { $0.nameOutbid(key, found: 5, seq: 6) }.map(\.text)
                == [#"{"event":"name_outbid","found_seq":5,"name":"\#(name)","seq":6}"# + "\n"])
        let m = site.torrent.metainfo
        #expect(lines(json: true) { $0.siteRetired(m) }.map(\.text)
                == [#"{"event":"site_retired","name":"\#(m.name)","site_id":"\#(m.siteID!)"}"# + "\n"])
    }

    @Test func inTextAFirstPutIsShownARefreshIsNotAndAnOutbidIsAWarning() {
        let text = lines(json: false) { $0.namePublished(key, record: record, seq: 1, sentTo: 1, refresh: false) }
        #expect(text.count == 1 && text[0].stream == .standardOutput)
        #expect(text.first?.text.contains("seq 1: site id \(record.siteID), put to 1 DHT node\n") == true)
        #expect(text.first?.text.hasPrefix("name \(SiteName.name(for: key))\n  magnet   \(SiteName.magnet(for: key))\n") == true)
        #expect(lines(json: false) { $0.namePublished(key, record: record, seq: 1, sentTo: 1, refresh: true) }.isEmpty)
        let warning = lines(json: false) { $0.nameOutbid(key, found: 5, seq: 6) }
        #expect(warning.count == 1 && warning[0].stream == .standardError && warning[0].text.contains("publishing seq 6"))
    }
}
