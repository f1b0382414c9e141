import Locking
import Foundation
import Bencode
import DHT
import DHTProtocol
import Gateway
import Hashing
import Metainfo
import NIOCore
import Names
import Signing
import Testing
@testable import WebseedKit

/// A site whose torrent never arrives: `ready` gives up at its deadline, as a fetch with no peers does.
private struct NeverSite: SiteContent {
    var metainfo: Metainfo? { nil }
    func ready(deadline: NIODeadline) async throws -> Metainfo {
        try? await Task.sleep(for: .nanoseconds(max(0, (deadline - .now()).nanoseconds)))
        throw SiteContentError.timedOut
    }
    func bytes(file: Int, range: Range<Int64>, deadline: NIODeadline) -> VerifiedChunks { VerifiedChunks(ready: .failure(SiteContentError.timedOut)) }
    var stats: SiteStats { SiteStats() }
}

/// One item, or none, as every DHT node would answer it; lookups counted.
private final class FakeDHT: Sendable {
    let item = Locked<MutableItem?>(nil)
    let lookups = Locked(0)
}

/// The resolver over a fake DHT (one item, or none, that the test sets) and sites that are
/// local data (any other torrent never appears). Events are read in order; each test is
/// bounded by its time limit, never by timed assertions.
@Suite(.timeLimit(.minutes(1))) final class NameResolverTests {
    let signer = try! Ed25519PrivateKey.generate()
    var name: String { SiteName.name(for: signer.publicKey) }
    let one: LocalSite
    let two: LocalSite
    private let dht = FakeDHT()
    let sites: GatewaySites
    let events: AsyncStream<NameEvent>
    let resolver: NameResolver
    let names: GatewayNames

    init() throws {
        one = try LocalSite(["index.html": Array("one".utf8)])
        two = try LocalSite(["index.html": Array("two".utf8), "new.html": Array("new".utf8)])
        let known = [one, two].map { SeededSite(torrent: $0.torrent) }
        sites = GatewaySites { (magnet: MagnetLink) -> any SiteContent in
            if let site = known.first(where: { $0.torrent.metainfo.v2InfoHash == magnet.v2InfoHash }) { return site }
            return NeverSite()
        }
        let (stream, continuation) = AsyncStream.makeStream(of: NameEvent.self)
        events = stream
        var settings = NameResolver.Settings()
        settings.refresh = 0.02
        settings.metadataTimeout = 0.5
        settings.firstRetry = 0.02
        let dht = dht
        resolver = NameResolver(sites: sites, settings: settings, lookup: { _, _ in
            dht.lookups.withLock { $0 += 1 }
            return dht.item.withLock { $0 }
        }) { continuation.yield($0) }
        names = GatewayNames(follower: resolver)
    }

    deinit { resolver.stop() }

    func record(_ m: Metainfo) -> SiteRecord { SiteRecord(metainfo: m)! }
    func put(_ value: BValue, seq: Int64) throws { dht.item.withLock { $0 = try? MutableItem(signing: value, seq: seq, with: signer) } }
    func put(_ site: LocalSite, seq: Int64) throws { try put(record(site.torrent.metainfo).value, seq: seq) }
    var id1: String { record(one.torrent.metainfo).siteID }
    var id2: String { record(two.torrent.metainfo).siteID }

    @Test func followsANameThroughNewerVersionsAndRefusesWhatDoesNotFit() async throws {
        var events = self.events.makeAsyncIterator()
        try put(one, seq: 1)
        names.add(name)
        #expect(await events.next() == .resolved(name: name, seq: 1, siteID: id1))
        #expect(names.current(name) == .init(siteID: id1, seq: 1))

        try put(two, seq: 2)
        #expect(await events.next() == .switched(name: name, seq: 2, siteID: id2, fromSeq: 1))
        #expect(names.current(name) == .init(siteID: id2, seq: 2))

        try put(one, seq: 1)
        #expect(await events.next() == .refused(name: name, .older(seq: 1, current: 2)))
        try put(one, seq: 2)
        #expect(await events.next() == .refused(name: name, .sameSeqOtherContent(seq: 2)))
        // The v2 hash of a torrent that exists, with an ih that is not that torrent's.
        try put(try SiteRecord(ih: [UInt8](repeating: 7, count: 20), v2: record(one.torrent.metainfo).v2).value, seq: 3)
        #expect(await events.next() == .refused(name: name, .torrentMismatch(seq: 3)))
        try put(try SiteRecord(ih: [UInt8](repeating: 8, count: 20), v2: SHA256Digest(bytes: [UInt8](repeating: 9, count: 32))!).value, seq: 4)
        guard case .refused(let n, .torrentNeverAppeared(seq: 4, _))? = await events.next(), n == name else {
            Issue.record("a torrent that never appears is refused")
            return
        }
        try put(.string("not a record"), seq: 5)
        guard case .refused(_, .badValue)? = await events.next() else { Issue.record("a value that is not a site record is refused"); return }
        #expect(names.current(name) == .init(siteID: id2, seq: 2), "every refusal kept version 2")
        #expect(names.statuses.first?.refusal?.0.code == "bad_value")

        // No DHT reachable: lookups find nothing, version 2 stays (and nothing is said until a
        // newer version is found: the next event is that switch).
        dht.item.withLock { $0 = nil }
        let before = dht.lookups.withLock { $0 }
        while dht.lookups.withLock({ $0 }) < before + 3 { await Task.yield() }
        #expect(names.current(name) == .init(siteID: id2, seq: 2))
        try put(one, seq: 6)
        #expect(await events.next() == .switched(name: name, seq: 6, siteID: id1, fromSeq: 2))
    }

    @Test func aRequestWaitsForTheFirstVersionWhileTheNameIsNotFoundYet() async throws {
        var events = self.events.makeAsyncIterator()
        let (names, name) = (names, name)
        async let waited = names.version(of: name, deadline: .now() + .seconds(30))
        #expect(await events.next() == .refused(name: name, .notFound), "said once, however often it is looked for")
        try put(two, seq: 7)
        #expect(await events.next() == .resolved(name: name, seq: 7, siteID: id2))
        #expect(await waited == .success(.init(siteID: id2, seq: 7)))
        #expect(names.statuses.first?.resolvedAt != nil)
    }

    /// A restarted gateway serves the version it last switched to before the DHT answers
    /// anything (here it never does); a stored item that no longer verifies is not used.
    @Test func aRestartedResolverStartsFromTheItemItKeptAndChecksIt() async throws {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("webseed-resolved-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: state) }
        func resolver(_ item: MutableItem?) -> (NameResolver, GatewayNames, AsyncStream<NameEvent>) {
            var settings = NameResolver.Settings()
            settings.refresh = 0.02
            settings.metadataTimeout = 0.5
            settings.firstRetry = 0.02
            settings.stateDirectory = state
            let (stream, continuation) = AsyncStream.makeStream(of: NameEvent.self)
            let r = NameResolver(sites: sites, settings: settings, lookup: { _, _ in item }) { continuation.yield($0) }
            return (r, GatewayNames(follower: r), stream)
        }
        let item = try MutableItem(signing: record(one.torrent.metainfo).value, seq: 3, with: signer)
        do {
            let (first, names, stream) = resolver(item)
            var events = stream.makeAsyncIterator()
            names.add(name)
            #expect(await events.next() == .resolved(name: name, seq: 3, siteID: id1))
            first.stop()
        }
        #expect(FileManager.default.fileExists(atPath: ResolvedItemFile.path(state: state, name: name)))
        do {
            let (second, names, stream) = resolver(nil)  // no DHT node answers
            var events = stream.makeAsyncIterator()
            names.add(name)
            #expect(await events.next() == .resolved(name: name, seq: 3, siteID: id1))
            #expect(names.current(name) == .init(siteID: id1, seq: 3))
            second.stop()
        }
        // The stored seq changed by hand: the signature no longer covers it, so nothing is served.
        let path = ResolvedItemFile.path(state: state, name: name)
        var stored = [UInt8](try #require(FileManager.default.contents(atPath: path)))
        let seq = Array("3:seqi3e".utf8)
        let at = try #require((0...(stored.count - seq.count)).first { Array(stored[$0..<$0 + seq.count]) == seq })
        stored[at + 6] = UInt8(ascii: "9")
        #expect(ResolvedItemFile.decode(stored, key: signer.publicKey) == nil)
        try Data(stored).write(to: URL(fileURLWithPath: path))
        do {
            let (third, names, stream) = resolver(nil)
            var events = stream.makeAsyncIterator()
            names.add(name)
            #expect(await events.next() == .refused(name: name, .notFound))
            #expect(names.current(name) == nil)
            third.stop()
        }
    }

    @Test func eventsSayWhatHappenedInJSON() {
        let lines = Locked<[String]>([])
        let log = EventSink(json: true, console: Console { _, line in lines.withLock { $0.append(line) } })
        log.nameEvent(.switched(name: name, seq: 2, siteID: id2, fromSeq: 1), port: 8080)
        log.nameEvent(.refused(name: name, .older(seq: 1, current: 2)), port: 8080)
        let got = lines.withLock { $0 }
        #expect(got.count == 2)
        #expect(got.first?.contains("\"event\":\"name_switched\"") == true && got.first?.contains("\"from_seq\":1") == true
                && got.first?.contains("\"seq\":2") == true && got.first?.contains("\"site_id\":\"\(id2)\"") == true)
        #expect(got.last?.contains("\"event\":\"name_refused\"") == true && got.last?.contains("\"code\":\"older_seq\"") == true)
    }

    @Test func aForgedItemFromADHTNodeIsAnEvent() throws {
        let e = DHTEvent.itemRefused(target: NodeID.random(), from: Endpoint(ip: IPAddress("127.0.0.1")!, port: 6881), reason: "seq 9: item signature does not verify")
        let (o, text) = try #require(describeDHT(e, host: "127.0.0.1", names: [:]))
        #expect(o["event"].map { "\($0.text)" } == "\"dht_item_refused\"")
        #expect(text?.contains("127.0.0.1:6881: seq 9: item signature does not verify") == true)
    }
}
