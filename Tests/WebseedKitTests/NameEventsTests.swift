import Locking
import DHTProtocol
import Hashing
import Names
import Signing
import Testing
@testable import WebseedKit

/// The `--json` events of `get` and `info` on a name, byte for byte (a published format,
/// like those EventFieldsTests pins): name_resolved, name_updated, name_refused, name_info.
@Suite struct NameEventsTests {
    final class Output: Sendable {
        let lines = Locked<[(stream: Console.Stream, text: String)]>([])
        var console: Console { Console { stream, text in self.lines.withLock { $0.append((stream, text)) } } }
        func take() -> [(stream: Console.Stream, text: String)] { lines.withLock { l in defer { l = [] }; return l } }
    }

    func json(_ call: (EventSink) -> Void) -> [String] {
        let out = Output()
        call(EventSink(json: true, style: .downloading, console: out.console))
        let lines = out.take()
        #expect(lines.allSatisfy { $0.stream == .standardOutput }, "JSON lines go to stdout only")
        return lines.map(\.text)
    }

    let key: Ed25519PrivateKey
    let record: SiteRecord
    let name: String

    init() throws {
        key = try Ed25519PrivateKey(seed: [UInt8](repeating: 7, count: 32))
        record = try SiteRecord(ih: [UInt8](repeating: 1, count: 20), v2: Digests.sha256(Array("site".utf8)))
        name = SiteName.name(for: key.publicKey)
    }

    @Test func resolvedUpdatedAndRefused() throws {
        let item = try MutableItem(signing: record.value, seq: 3, with: key)
        var tracker = NameTracker(key: key.publicKey)
        guard case .fetch(let version) = tracker.found(item, now: 0) else {
            Issue.record("the tracker did not take the item")
            return
        }
        let (v2, id, ih) = (record.v2.hex, record.siteID, HexCoding.encode(record.ih))
        #expect(json { $0.nameResolved(name, version) } == [
            #"{"event":"name_resolved","ih":"\#(ih)","name":"\#(name)","seq":3,"site_id":"\#(id)","v2_infohash":"\#(v2)"}"# + "\n"])
        #expect(json { $0.nameUpdated(name, seq: 3, siteID: id, directory: "/srv/site", files: 2000, changed: 1, removed: 0, downloaded: 4200) } == [
            #"{"changed":1,"directory":"/srv/site","downloaded":4200,"event":"name_updated","files":2000,"name":"\#(name)","removed":0,"seq":3,"site_id":"\#(id)"}"# + "\n"])
        #expect(json { $0.nameRefused(name, .torrentMismatch(seq: 4)) } == [
            #"{"code":"torrent_mismatch","event":"name_refused","name":"\#(name)","reason":"the torrent named by seq 4 does not match the item (info hashes differ)","seq":4}"# + "\n"])
        #expect(json { $0.nameRefused(name, .notFound) } == [
            #"{"code":"not_found","event":"name_refused","name":"\#(name)","reason":"no DHT node holds an item for this name","seq":null}"# + "\n"])
    }

    @Test func aRefusalIsAWarningOnStandardErrorInText() {
        let out = Output()
        EventSink(json: false, console: out.console).nameRefused(name, .older(seq: 1, current: 2))
        let lines = out.take()
        #expect(lines.count == 1 && lines.first?.stream == .standardError)
        #expect(lines.first?.text.contains("the item's seq 1 is below the served seq 2; nothing changed") == true)
    }

    @Test func info() {
        let magnet = "magnet:?xt=urn:btih:\(HexCoding.encode(record.ih))&xt=urn:btmh:1220\(record.v2.hex)"
        let lines = json { $0.nameInfo(name: name, key: key.publicKey, salt: [], seq: 9, record: record) }
        #expect(lines == [
            #"{"event":"name_info","ih":"\#(HexCoding.encode(record.ih))","magnet":"\#(magnet)","name":"\#(name)","public_key":"\#(HexCoding.encode(key.publicKey.bytes))","salt":"","seq":9,"site_id":"\#(record.siteID)","v2_infohash":"\#(record.v2.hex)"}"# + "\n"])
    }
}
