import Foundation
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
    let big = bytes(2, 2_600_000)  // several chunks
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
        #expect(try await collect(site.bytes(file: file("media/big.bin"), range: 0..<2_600_000, deadline: deadline)) == big)
        #expect(try await collect(site.bytes(file: file("media/big.bin"), range: 300_000..<300_010, deadline: deadline))
            == Array(big[300_000..<300_010]))
        #expect(site.stats.verified == site.stats.total)
    }

    /// Chunk buffers are reused once the connection has let go of them, never while it
    /// still holds them: here every chunk is held to the end, as a slow connection would.
    @Test func chunksStillHeldAreNeverOverwritten() async throws {
        var held: [ByteBuffer] = []
        for try await chunk in site.bytes(file: file("media/big.bin"), range: 1..<2_600_000, deadline: deadline) { held.append(chunk) }
        #expect(held.count > 2)
        #expect(held.flatMap { Array(buffer: $0) } == Array(big[1...]))
    }

    @Test func aChangedFileIsRefusedBeforeTheFirstByte() async throws {
        try flip("media/big.bin", at: 2_550_000)
        // The whole range is checked before the first chunk, since the file is not the one
        // that verified: the gateway can still answer with an error status.
        var chunks = site.bytes(file: file("media/big.bin"), range: 0..<2_600_000, deadline: deadline).makeAsyncIterator()
        await #expect(throws: SiteContentError.changedOnDisk(path: "media/big.bin")) { _ = try await chunks.next() }
        // And it stays withdrawn (reported once: later refusals are plain errors naming it).
        #expect(await firstChunkError("media/big.bin", 0..<10) == "media/big.bin changed on disk since it was verified; its pieces are no longer served")
    }

    func append(_ path: String, _ bytes: [UInt8]) throws {
        let handle = try FileHandle(forWritingTo: local.dir.appendingPathComponent(path))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: bytes)
    }

    func truncate(_ path: String, to size: UInt64) throws {
        let handle = try FileHandle(forWritingTo: local.dir.appendingPathComponent(path))
        defer { try? handle.close() }
        try handle.truncate(atOffset: size)
    }

    /// The error a first chunk fails with: `SiteContentError.changedOnDisk` is the one the
    /// gateway reports (502 and a warning); any other error is a 502 naming the file, unreported.
    func firstChunkError(_ path: String, _ range: Range<Int64>) async -> String? {
        var chunks = site.bytes(file: file(path), range: range, deadline: deadline).makeAsyncIterator()
        do {
            _ = try await chunks.next()
            return nil
        } catch let e as SiteContentError {
            return "reported: \(e)"
        } catch {
            return "\(error)"
        }
    }

    @Test func anAppendedFileIsRefusedAndReportedOnce() async throws {
        try append("media/big.bin", Array("appended".utf8))
        let message = "media/big.bin changed on disk since it was verified; its pieces are no longer served"
        // Its old bytes would still hash right; it is refused all the same, large or small ranges.
        #expect(await firstChunkError("media/big.bin", 0..<2_600_000) == "reported: " + message)
        #expect(await firstChunkError("media/big.bin", 0..<2_600_000) == message)
        #expect(await firstChunkError("media/big.bin", 10..<20) == message)
        #expect(try await collect(site.bytes(file: file("index.html"), range: 0..<5000, deadline: deadline)) == small)
    }

    @Test func aTruncatedFileIsRefusedAndReportedOnce() async throws {
        try truncate("index.html", to: 4000)
        let message = "index.html changed on disk since it was verified; its pieces are no longer served"
        #expect(await firstChunkError("index.html", 0..<5000) == "reported: " + message)
        #expect(await firstChunkError("index.html", 0..<100) == message)
        try truncate("media/big.bin", to: 600_000)
        #expect(await firstChunkError("media/big.bin", 0..<100) == "reported: media/big.bin changed on disk since it was verified; its pieces are no longer served")
    }

    @Test func aSmallChangedFileIsRefused() async throws {
        try flip("index.html", at: 10)
        await #expect(throws: SiteContentError.changedOnDisk(path: "index.html")) {
            _ = try await collect(site.bytes(file: file("index.html"), range: 0..<5000, deadline: deadline))
        }
    }
}

