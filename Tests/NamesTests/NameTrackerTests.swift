import Bencode
import DHTProtocol
import Hashing
import Metainfo
import Signing
import Testing
@testable import Names

#if canImport(Glibc)
import Glibc
#endif

/// A torrent from libtorrent's test fixtures (hybrid and v2-only).
private func fixture(_ name: String) throws -> Metainfo {
    let path = #filePath.split(separator: "/").dropLast(2).joined(separator: "/") + "/Fixtures/libtorrent/\(name).torrent"
    let fd = open("/" + path, O_RDONLY)
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: 1 << 20)
    let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    return try Metainfo(bytes: Array(bytes.prefix(max(0, n))))
}

@Suite struct SiteRecordTests {
    @Test func aHybridNamesItsV1HashAsIhAndItsV2Hash() throws {
        let m = try fixture("v2_hybrid")
        let r = try #require(SiteRecord(metainfo: m))
        #expect(r.ih == m.v1InfoHash?.bytes)
        #expect(r.v2 == m.v2InfoHash)
        #expect(r.value.encoded() == Array("d2:ih20:".utf8) + r.ih + Array("2:v232:".utf8) + r.v2.bytes + Array("e".utf8))
        #expect(try SiteRecord(value: r.value) == r)
        #expect(r.matches(m))
    }

    @Test func aV2OnlyTorrentNamesItsTruncatedV2Hash() throws {
        let m = try fixture("v2_only")
        let r = try #require(SiteRecord(metainfo: m))
        #expect(r.ih == Array(try #require(m.v2InfoHash).bytes.prefix(20)))
        #expect(!r.matches(try fixture("v2_hybrid")))
    }

    @Test(arguments: [
        BValue.integer(1),
        .dictionary(BDictionary([("ih", .bytes([UInt8](repeating: 1, count: 20)))])),
        .dictionary(BDictionary([("ih", .bytes([UInt8](repeating: 1, count: 19))), ("v2", .bytes([UInt8](repeating: 2, count: 32)))])),
        .dictionary(BDictionary([("ih", .bytes([UInt8](repeating: 1, count: 20))), ("v2", .bytes([UInt8](repeating: 2, count: 20)))])),
    ])
    func valuesThatAreNotSiteRecordsAreRefused(_ value: BValue) {
        #expect(throws: SiteRecordError.self) { try SiteRecord(value: value) }
    }
}

@Suite struct SiteNameParseTests {
    @Test func namesAndBTPKMagnetsParse() throws {
        let key = try Ed25519PrivateKey.generate().publicKey
        #expect(SiteName.parse(SiteName.name(for: key))?.key == key)
        let m = try #require(SiteName.parse(SiteName.magnet(for: key, salt: Array("blog".utf8))))
        #expect(m.key == key && m.salt == Array("blog".utf8))
        #expect(SiteName.parse(SiteName.magnet(for: key))?.salt == [])
        #expect(SiteName.parse("magnet:?xt=urn:btih:" + String(repeating: "a", count: 40)) == nil)
        #expect(SiteName.parse("magnet:?xs=urn:btpk:abcd") == nil)
        #expect(SiteName.parse(SiteName.magnet(for: key) + "&s=" + String(repeating: "00", count: 65)) == nil)
    }
}

@Suite struct NameTrackerTests {
    let signer = try! Ed25519PrivateKey.generate()
    let hybrid = try! fixture("v2_hybrid")
    let v2only = try! fixture("v2_only")

    func item(_ m: Metainfo, seq: Int64, by key: Ed25519PrivateKey? = nil) throws -> MutableItem {
        try MutableItem(signing: try #require(SiteRecord(metainfo: m)).value, seq: seq, with: key ?? signer)
    }

    func serving(_ m: Metainfo, seq: Int64) throws -> NameTracker {
        var t = NameTracker(key: signer.publicKey, refresh: 60, metadataTimeout: 30)
        #expect(t.found(try item(m, seq: seq), now: 0) == .fetch(.init(item: try item(m, seq: seq), record: SiteRecord(metainfo: m)!)))
        #expect(try t.metadata(m, seq: seq, now: 1).get().seq == seq)
        return t
    }

    @Test func aVersionIsServedOnlyOnceItsTorrentMatched() throws {
        var t = NameTracker(key: signer.publicKey)
        #expect(t.lookupDue(now: 0))
        guard case .fetch = t.found(try item(hybrid, seq: 1), now: 0) else { Issue.record("no fetch"); return }
        #expect(t.current == nil)
        _ = try t.metadata(hybrid, seq: 1, now: 2).get()
        #expect(t.current?.record.v2 == hybrid.v2InfoHash && t.lastResolved == 2)
    }

    @Test func aTorrentThatDoesNotMatchTheItemIsRefusedAndNotFetchedAgain() throws {
        var t = try serving(hybrid, seq: 1)
        let lie = try item(hybrid, seq: 2)
        guard case .fetch = t.found(lie, now: 100) else { Issue.record("no fetch"); return }
        #expect(t.metadata(v2only, seq: 2, now: 101) == .failure(.torrentMismatch(seq: 2)))
        #expect(t.current?.seq == 1)
        #expect(t.found(lie, now: 200) == .keep)
    }

    @Test func seqNeverGoesDownAndTheSameSeqWithOtherContentIsRefused() throws {
        var t = try serving(hybrid, seq: 5)
        #expect(t.found(try item(v2only, seq: 4), now: 100) == .refused(.older(seq: 4, current: 5)))
        #expect(t.found(try item(v2only, seq: 5), now: 101) == .refused(.sameSeqOtherContent(seq: 5)))
        #expect(t.found(try item(hybrid, seq: 5), now: 102) == .keep)
        #expect(t.current?.record.v2 == hybrid.v2InfoHash && t.lastResolved == 102)
    }

    @Test func anItemOfAnotherKeyOrSaltIsRefused() throws {
        var t = NameTracker(key: signer.publicKey)
        #expect(t.found(try item(hybrid, seq: 1, by: try Ed25519PrivateKey.generate()), now: 0) == .refused(.wrongKey))
        var salted = NameTracker(key: signer.publicKey, salt: Array("x".utf8))
        #expect(salted.found(try item(hybrid, seq: 1), now: 0) == .refused(.wrongKey))
    }

    @Test func aValueThatIsNotASiteRecordIsRefused() throws {
        var t = NameTracker(key: signer.publicKey)
        let odd = try MutableItem(signing: .string("hello"), seq: 1, with: signer)
        guard case .refused(.badValue) = t.found(odd, now: 0) else { Issue.record("not refused"); return }
        #expect(t.pending == nil)
    }

    @Test func aTorrentThatNeverAppearsIsRefusedAfterTheTimeout() throws {
        var t = try serving(hybrid, seq: 1)
        _ = t.found(try item(v2only, seq: 2), now: 100)
        #expect(t.tick(now: 129) == nil)
        #expect(t.tick(now: 130) == .torrentNeverAppeared(seq: 2, after: 30))
        #expect(t.current?.seq == 1)
        #expect(t.found(try item(v2only, seq: 2), now: 131) == .keep)
    }

    /// Its seeders may come later: the same item is fetched again after max(refresh,
    /// metadataTimeout), then after twice as long at each miss (at most maxRetryWait), and
    /// used once its torrent arrives.
    @Test func aTorrentThatNeverAppearedIsTriedAgainLaterBackingOff() throws {
        var t = try serving(hybrid, seq: 1)
        t.maxRetryWait = 200
        let next = try item(v2only, seq: 2)
        _ = t.found(next, now: 100)
        #expect(t.tick(now: 130) != nil)                       // retry at 130 + 60
        #expect(t.found(next, now: 189) == .keep)
        guard case .fetch = t.found(next, now: 190) else { Issue.record("not tried again"); return }
        #expect(t.tick(now: 220) != nil)                       // retry at 220 + 120
        #expect(t.found(next, now: 339) == .keep)
        guard case .fetch = t.found(next, now: 340) else { Issue.record("not tried again"); return }
        #expect(t.tick(now: 370) != nil)                       // retry at 370 + 200 (the cap)
        #expect(t.found(next, now: 569) == .keep)
        guard case .fetch = t.found(next, now: 570) else { Issue.record("not tried again"); return }
        #expect(try t.metadata(v2only, seq: 2, now: 575).get().seq == 2)
        #expect(t.stalled == nil && t.current?.seq == 2)
    }

    @Test func lookupsComeEveryRefreshAndOnAMissAtMostEveryFewSeconds() throws {
        var t = try serving(hybrid, seq: 1)
        _ = t.found(try item(hybrid, seq: 1), now: 10)
        #expect(!t.lookupDue(now: 69) && t.lookupDue(now: 70))
        #expect(!t.missLookupAllowed(now: 14) && t.missLookupAllowed(now: 15))
        #expect(t.found(nil, now: 20) == .keep)  // nothing found: the served version stays
        #expect(t.current?.seq == 1)
    }
}
