import Gateway
import Metainfo
import NIOCore
import Swarm
import Testing
@testable import WebseedKit

/// The adapter the gateway's invariant rests on for seeded sites: it yields only bytes that
/// verified, and turns a file changed on disk into `SiteContentError.changedOnDisk`.
@Suite final class SeededSiteTests {
    let local: LocalSite
    let small = bytes(1, 5000)
    let big = bytes(2, 700_000)  // several chunks
    let site: SeededSite

    init() throws {
        local = try LocalSite(["index.html": small, "media/big.bin": big])
        site = SeededSite(torrent: local.torrent)
    }

    func file(_ path: String) -> Int { local.file(path) }
    var deadline: NIODeadline { .now() + .seconds(5) }

    func flip(_ path: String, at offset: UInt64) throws { try local.flip(path, at: offset) }

    @Test func yieldsTheVerifiedBytesOfARange() async throws {
        #expect(try await site.ready(deadline: deadline).name == site.torrent.metainfo.name)
        #expect(try await collect(site.bytes(file: file("media/big.bin"), range: 0..<700_000, deadline: deadline)) == big)
        #expect(try await collect(site.bytes(file: file("media/big.bin"), range: 300_000..<300_010, deadline: deadline))
            == Array(big[300_000..<300_010]))
        #expect(site.stats.verified == site.stats.total)
    }

    @Test func aChangedFileIsRefusedBeforeTheFirstByte() async throws {
        try flip("media/big.bin", at: 650_000)
        // The whole range is checked before the first chunk, since the file is not the one
        // that verified: the gateway can still answer with an error status.
        var chunks = site.bytes(file: file("media/big.bin"), range: 0..<700_000, deadline: deadline).makeAsyncIterator()
        await #expect(throws: SiteContentError.changedOnDisk(path: "media/big.bin")) { _ = try await chunks.next() }
        // And it stays withdrawn.
        var again = site.bytes(file: file("media/big.bin"), range: 0..<10, deadline: deadline).makeAsyncIterator()
        await #expect(throws: SiteContentError.changedOnDisk(path: "media/big.bin")) { _ = try await again.next() }
    }

    @Test func aSmallChangedFileIsRefused() async throws {
        try flip("index.html", at: 10)
        await #expect(throws: SiteContentError.changedOnDisk(path: "index.html")) {
            _ = try await collect(site.bytes(file: file("index.html"), range: 0..<5000, deadline: deadline))
        }
    }
}

