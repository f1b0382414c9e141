import Foundation
import Hashing
import Merkle
import Metainfo
import NIOCore
import PeerWire
import Storage
import Testing
@testable import Swarm

/// A web seed's decisions, driven by hand: which URLs and ranges for which blocks, how an
/// answer is cut into blocks, and when the seed is dropped. No sockets.
@Suite struct WebSeedSourceTests {
    typealias Action = WebSeedSource.Action

    func gets(_ actions: [Action]) -> [(id: Int, url: String, range: Range<Int64>)] {
        actions.compactMap { if case .get(let id, let url, let range) = $0 { (id, url, range) } else { nil } }
    }

    func delivered(_ actions: [Action]) -> [(BlockRequest, [UInt8])] {
        actions.compactMap { if case .deliver(let r, let b) = $0 { (r, Array(buffer: b)) } else { nil } }
    }

    func dropped(_ actions: [Action]) -> [String] {
        actions.compactMap { if case .drop(let why, _) = $0 { why } else { nil } }
    }

    func blocks(piece: Int, count: Int, length: Int = blockSize) -> [BlockRequest] {
        (0..<count).map { BlockRequest(piece: UInt32(piece), begin: UInt32($0 * blockSize), length: UInt32(length)) }
    }

    // MARK: URLs and ranges

    @Test func multiFileURLsCarryTheNameAndEscapeEachSegment() throws {
        let f = try Fixture(files: ["a b/ü.html": content(1, 100), "index.html": content(2, 100)])
        let m = f.metainfo
        let spaced = try #require(m.files.first { $0.path == ["a b", "ü.html"] })
        #expect(WebSeedLayout.url(base: "http://h/s/", metainfo: m, file: spaced) == "http://h/s/\(m.name)/a%20b/%C3%BC.html")
        // A base without a trailing slash gets one, as libtorrent does.
        #expect(WebSeedLayout.url(base: "http://h/s", metainfo: m, file: spaced) == "http://h/s/\(m.name)/a%20b/%C3%BC.html")
    }

    @Test func aSingleFileTorrentIsTheURLOrTheURLPlusItsName() throws {
        let bytes = content(3, 50_000)
        let leaves = stride(from: 0, to: bytes.count, by: blockSize).map { Digests.sha256(Array(bytes[$0..<min($0 + blockSize, bytes.count)])) }
        let files = [HashedFile(path: ["one file.bin"], length: Int64(bytes.count), tree: MerkleTree(leaves: leaves))]
        let m = try TorrentBuilder.build(name: "one file.bin", pieceLength: 16_384, files: files, hybrid: false, singleFile: true).metainfo
        #expect(m.isSingleFile)
        #expect(WebSeedLayout.url(base: "http://h/dl/", metainfo: m, file: m.files[0]) == "http://h/dl/one%20file.bin")
        #expect(WebSeedLayout.url(base: "http://h/dl/x.bin", metainfo: m, file: m.files[0]) == "http://h/dl/x.bin")
    }

    @Test func aRangeAcrossFilesIsTheirRangesWithThePaddingBetween() throws {
        let f = try Fixture(files: ["a.bin": content(1, 20_000), "b.bin": content(2, 40_000)])
        let m = f.metainfo
        let layout = WebSeedLayout(base: "http://h/", metainfo: m)
        let a = m.files[0], b = m.files[1]
        #expect(b.offset == 32_768)  // a's two pieces, padded
        let segments = layout.segments(16_384..<(32_768 + 16_384))
        #expect(segments == [
            .init(url: "http://h/\(m.name)/a.bin", range: 16_384..<20_000, fileLength: a.length),
            .init(url: nil, range: 0..<(32_768 - 20_000), fileLength: 0),
            .init(url: "http://h/\(m.name)/b.bin", range: 0..<16_384, fileLength: b.length),
        ])
    }

    // MARK: requests to GETs

    @Test func adjacentBlocksBecomeOneRangeAndTheAnswerIsCutIntoBlocks() throws {
        let bytes = content(4, 100_000)
        let f = try Fixture(files: ["big.bin": bytes], pieceLength: 65_536)
        var s = WebSeedSource(layout: WebSeedLayout(base: "http://h/", metainfo: f.metainfo), pieceLength: 65_536, now: 0)
        let asked = blocks(piece: 0, count: 4) + blocks(piece: 1, count: 2) + [BlockRequest(piece: 1, begin: 32_768, length: 100_000 - 65_536 - 32_768)]
        let started = gets(s.add(asked, now: 0))
        #expect(started.count == 1)
        #expect(started.first?.url == "http://h/\(f.metainfo.name)/big.bin")
        #expect(started.first?.range == 0..<100_000)
        let id = try #require(started.first?.id)
        #expect(s.head(id, status: 206, now: 1).isEmpty)
        // Chunks that end inside blocks: every block comes out whole, with its bytes.
        var out: [Action] = []
        var at = 0
        for size in [1000, 20_000, 16_384, 40_000, 100_000 - 77_384] {
            out += s.body(id, ByteBuffer(bytes: bytes[at..<(at + size)]), now: 1)
            at += size
        }
        let got = delivered(out)
        #expect(got.map(\.0) == asked)
        let same = got.flatMap(\.1) == bytes
        #expect(same, "the blocks hold the file's bytes in order")
        #expect(dropped(s.end(id, error: nil, now: 2)).isEmpty)
        #expect(!s.busy)
    }

    @Test func paddingBetweenFilesIsZerosAndTheNextFileIsTheNextGET() throws {
        let a = content(1, 20_000), b = content(2, 10_000)
        let f = try Fixture(files: ["a.bin": a, "b.bin": b])
        let m = f.metainfo
        var s = WebSeedSource(layout: WebSeedLayout(base: "http://h/", metainfo: m), pieceLength: m.pieceLength, now: 0)
        // v2 pieces hold only file bytes: piece 1 is a's last 3616 bytes, piece 2 all of b.
        let asked = [BlockRequest(piece: 1, begin: 0, length: 3616), BlockRequest(piece: 2, begin: 0, length: 10_000)]
        let first = gets(s.add(asked, now: 0))
        #expect(first.map(\.url) == ["http://h/\(m.name)/a.bin", "http://h/\(m.name)/b.bin"])
        #expect(first.map(\.range) == [16_384..<20_000, 0..<10_000])
        _ = s.head(first[0].id, status: 206, now: 0)
        let one = s.body(first[0].id, ByteBuffer(bytes: a[16_384...]), now: 0)
        #expect(delivered(one).map(\.1) == [Array(a[16_384...])])
        #expect(gets(s.end(first[0].id, error: nil, now: 0)).isEmpty)
    }

    @Test func atMostFourGETsRunAtOnce() throws {
        let f = try Fixture(files: ["big.bin": content(5, 20 * 16_384)])
        var s = WebSeedSource(layout: WebSeedLayout(base: "http://h/", metainfo: f.metainfo), pieceLength: 16_384, now: 0)
        // Every other piece: no two adjacent, so six GETs are wanted.
        let asked = (0..<6).map { BlockRequest(piece: UInt32($0 * 2), begin: 0, length: 16_384) }
        let first = gets(s.add(asked, now: 0))
        #expect(first.count == WebSeedSource.maxJobs)
        _ = s.head(first[0].id, status: 206, now: 0)
        _ = s.body(first[0].id, ByteBuffer(repeating: 1, count: 16_384), now: 0)
        let next = gets(s.end(first[0].id, error: nil, now: 0))
        #expect(next.map(\.range) == [Int64(8 * 16_384)..<Int64(9 * 16_384)])
        // A cancelled request that has not gone out never does.
        s.cancel(asked[5])
        _ = s.head(first[1].id, status: 206, now: 0)
        _ = s.body(first[1].id, ByteBuffer(repeating: 1, count: 16_384), now: 0)
        #expect(gets(s.end(first[1].id, error: nil, now: 0)).isEmpty)
    }

    // MARK: dropping

    func oneGET(_ f: Fixture, length: Int = 16_384) -> (WebSeedSource, Int) {
        var s = WebSeedSource(layout: WebSeedLayout(base: "http://h/", metainfo: f.metainfo), pieceLength: f.metainfo.pieceLength, stallTimeout: 20, now: 0)
        let id = gets(s.add([BlockRequest(piece: 0, begin: 0, length: UInt32(length))], now: 0))[0].id
        return (s, id)
    }

    @Test func aLongAnswerIsCutAtWhatWasAskedAndDropsTheSeed() throws {
        let f = try Fixture(files: ["big.bin": content(6, 40_000)])
        var (s, id) = oneGET(f)
        _ = s.head(id, status: 206, now: 0)
        let out = s.body(id, ByteBuffer(repeating: 7, count: 20_000), now: 1)
        #expect(delivered(out).map(\.1) == [[UInt8](repeating: 7, count: 16_384)])
        #expect(dropped(out) == ["sent more than the 16384 bytes asked for (http://h/\(f.metainfo.name)/big.bin)"])
        // Once dropped, nothing more is said.
        #expect(s.body(id, ByteBuffer(repeating: 7, count: 10), now: 2).isEmpty)
        #expect(s.add([BlockRequest(piece: 1, begin: 0, length: 16_384)], now: 2).isEmpty)
    }

    @Test func aShortAnswerDropsTheSeed() throws {
        let f = try Fixture(files: ["big.bin": content(6, 40_000)])
        var (s, id) = oneGET(f)
        _ = s.head(id, status: 206, now: 0)
        #expect(delivered(s.body(id, ByteBuffer(repeating: 7, count: 10_000), now: 1)).isEmpty)
        #expect(dropped(s.end(id, error: nil, now: 1)) == ["answered 10000 of 16384 bytes (http://h/\(f.metainfo.name)/big.bin)"])
    }

    @Test func anErrorStatusOrA200ForPartOfAFileDropsTheSeed() throws {
        let f = try Fixture(files: ["big.bin": content(6, 40_000)])
        var (s, id) = oneGET(f)
        #expect(dropped(s.head(id, status: 404, now: 0)) == ["HTTP 404 for http://h/\(f.metainfo.name)/big.bin"])
        var (t, tid) = oneGET(f)
        #expect(dropped(t.head(tid, status: 200, now: 0)) == ["answered 200 without the range asked for (http://h/\(f.metainfo.name)/big.bin)"])
        var (u, uid) = oneGET(f)
        #expect(dropped(u.end(uid, error: "redirects in a cycle", now: 0)) == ["redirects in a cycle"])
    }

    /// What may pass is said so (the download tries the seed again later); what the server
    /// means, or breaks the rules with, is not.
    @Test func aDropSaysWhetherItsReasonMayPass() throws {
        let f = try Fixture(files: ["big.bin": content(6, 40_000)])
        func transient(_ actions: [Action]) -> Bool? {
            actions.compactMap { if case .drop(_, let transient) = $0 { transient } else { nil } }.first
        }
        for (status, passes) in [(503, true), (500, true), (408, true), (429, true), (404, false), (403, false), (200, false), (302, false)] {
            var (s, id) = oneGET(f)
            #expect(transient(s.head(id, status: status, now: 0)) == passes, "HTTP \(status)")
        }
        var (a, aid) = oneGET(f)
        #expect(transient(a.end(aid, error: "connection refused", now: 0)) == true)
        var (b, bid) = oneGET(f)
        _ = b.head(bid, status: 206, now: 0)
        #expect(transient(b.end(bid, error: nil, now: 0)) == true)  // ended early
        var (c, cid) = oneGET(f)
        _ = c.head(cid, status: 206, now: 0)
        #expect(transient(c.tick(now: 21)) == true)  // stalled
        var (d, did) = oneGET(f)
        _ = d.head(did, status: 206, now: 0)
        #expect(transient(d.body(did, ByteBuffer(repeating: 1, count: 20_000), now: 0)) == false)  // more than asked
    }

    @Test func a200ForAWholeFileAskedForWholeIsUsed() throws {
        let bytes = content(8, 10_000)
        let f = try Fixture(files: ["small.bin": bytes])
        var (s, id) = oneGET(f, length: 10_000)
        #expect(s.head(id, status: 200, now: 0).isEmpty)
        let got = delivered(s.body(id, ByteBuffer(bytes: bytes), now: 0))
        let same = got.count == 1 && got.first?.1 == bytes
        #expect(same)
    }

    @Test func aSeedThatSendsNothingWhileAskedIsDroppedAfterTheStallTimeout() throws {
        let f = try Fixture(files: ["big.bin": content(6, 40_000)])
        var (s, id) = oneGET(f)
        _ = s.head(id, status: 206, now: 5)
        _ = s.body(id, ByteBuffer(repeating: 1, count: 100), now: 10)
        #expect(s.tick(now: 30).isEmpty)
        #expect(dropped(s.tick(now: 30.5)) == ["sent nothing for 20 s"])
        // Idle (nothing asked) is not a stall.
        var idle = WebSeedSource(layout: WebSeedLayout(base: "http://h/", metainfo: f.metainfo), pieceLength: 16_384, now: 0)
        #expect(idle.tick(now: 1000).isEmpty)
    }

    // MARK: redirects

    @Test func redirectsAreFollowedAsNewGETsOfTheSameRange() throws {
        let f = try Fixture(files: ["big.bin": content(6, 40_000)])
        var (s, id) = oneGET(f)
        let url = "http://h/\(f.metainfo.name)/big.bin"
        let moved = gets(s.head(id, status: 302, location: "/mirror/big.bin", now: 0))
        #expect(moved.map(\.url) == ["http://h/mirror/big.bin"])
        #expect(moved.map(\.range) == [0..<16_384])
        // The first answer's rest is ignored; the new GET's answer is the block.
        #expect(s.body(id, ByteBuffer(repeating: 9, count: 100), now: 0).isEmpty)
        #expect(s.end(id, error: nil, now: 0).isEmpty)
        let again = gets(s.head(moved[0].id, status: 301, location: "other/big.bin", now: 0))
        #expect(again.map(\.url) == ["http://h/mirror/other/big.bin"])
        _ = s.head(again[0].id, status: 206, now: 0)
        #expect(delivered(s.body(again[0].id, ByteBuffer(repeating: 1, count: 16_384), now: 0)).count == 1)
        #expect(WebSeedSource.resolve("https://x/y", against: url) == "https://x/y")
        #expect(WebSeedSource.resolve("//x/y", against: url) == "http://x/y")
        #expect(WebSeedSource.resolve("ftp://x/y", against: url) == nil)
    }

    @Test func aRedirectCycleTooManyRedirectsOrARefusedTargetDropTheSeed() throws {
        let f = try Fixture(files: ["big.bin": content(6, 40_000)])
        let url = "http://h/\(f.metainfo.name)/big.bin"
        var (s, id) = oneGET(f)
        #expect(dropped(s.head(id, status: 302, location: url, now: 0)) == ["redirects in a cycle (\(url))"])

        var (t, tid) = oneGET(f)
        var last: [Action] = []
        for i in 0...WebSeedSource.maxRedirects {
            last = t.head(tid, status: 302, location: "/hop\(i)", now: 0)
            if let next = gets(last).first { tid = next.id }
        }
        #expect(dropped(last) == ["more than 5 redirects (http://h/hop4)"])

        var u = WebSeedSource(layout: WebSeedLayout(base: "http://127.0.0.1/", metainfo: f.metainfo), pieceLength: f.metainfo.pieceLength,
                              mayFetch: { $0.hasPrefix("http://127.0.0.1") }, now: 0)
        let uid = gets(u.add([BlockRequest(piece: 0, begin: 0, length: 16_384)], now: 0))[0].id
        #expect(dropped(u.head(uid, status: 307, location: "http://example.org/big.bin", now: 0))
                == ["redirected to http://example.org/big.bin, which is not used"])
        var v = WebSeedSource(layout: WebSeedLayout(base: "http://h/", metainfo: f.metainfo), pieceLength: f.metainfo.pieceLength, now: 0)
        let vid = gets(v.add([BlockRequest(piece: 0, begin: 0, length: 16_384)], now: 0))[0].id
        #expect(dropped(v.head(vid, status: 302, now: 0)) == ["HTTP 302 without a usable Location (\(url))"])
    }
}
