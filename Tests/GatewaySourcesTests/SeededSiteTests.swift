import Foundation
import Gateway
import Metainfo
import NIOCore
import Storage
import Swarm
import Testing
@testable import webseed

/// The adapter the gateway's invariant rests on for seeded sites: it yields only bytes that
/// verified, and turns a file changed on disk into `SiteContentError.changedOnDisk`.
@Suite final class SeededSiteTests {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("webseed-gateway-sources-\(UUID().uuidString)")
    let small = bytes(1, 5000)
    let big = bytes(2, 700_000)  // several chunks
    let site: SeededSite

    init() throws {
        for (path, data) in [("index.html", small), ("media/big.bin", big)] {
            let u = dir.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: u.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(data).write(to: u)
        }
        let request = TorrentCreator.Request(directory: dir.path)
        let listing = try TorrentCreator.list(request)
        let metainfo = try TorrentCreator.create(request, listing: listing, write: false).metainfo
        let data = LocalDataVerifier.verify(metainfo, directory: listing.root, resumePath: nil)
        site = SeededSite(torrent: SeedTorrent(metainfo: metainfo, directory: listing.root, data: data))
    }

    deinit { try? FileManager.default.removeItem(at: dir) }

    func file(_ path: String) -> Int { site.torrent.metainfo.files.firstIndex { $0.pathString == path }! }
    var deadline: NIODeadline { .now() + .seconds(5) }

    func collect(_ chunks: VerifiedChunks) async throws -> [UInt8] {
        var out: [UInt8] = []
        for try await chunk in chunks { out += Array(buffer: chunk) }
        return out
    }

    /// One byte changed in place, size kept (as an editor saving over the file would).
    func flip(_ path: String, at offset: UInt64) throws {
        let handle = try FileHandle(forUpdating: dir.appendingPathComponent(path))
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        let old = try handle.read(upToCount: 1)![0]
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: [old ^ 0xff])
    }

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

private func bytes(_ seed: UInt8, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) } }
