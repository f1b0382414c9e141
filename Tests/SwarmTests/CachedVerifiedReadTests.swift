import Foundation
import NIOCore
import Testing
@testable import Swarm

/// The gateway's read that never blocks (`readVerifiedIfCached`): bytes only from an
/// unchanged, verified file, and never into a buffer another holder still reads.
@Suite struct CachedVerifiedReadTests {
    let page = content(1, 40_000)  // pieces 0, 1, 2 (16 KiB pieces)
    let fixture: Fixture
    var torrent: SeedTorrent { fixture.torrent }
    var pageFile: Int { torrent.metainfo.files.firstIndex { $0.pathString == "index.html" }! }
    var pagePath: String { fixture.dir.appendingPathComponent("index.html").path }

    init() throws {
        fixture = try Fixture(files: ["index.html": content(1, 40_000), "other.bin": content(2, 20_000)])
        // Read once the usual way, so its pages are in the cache.
        _ = try torrent.readVerified(file: pageFile, offset: 0, length: 40_000)
    }

    func cachedRead(_ range: Range<Int64>, into buffer: inout ByteBuffer) -> Bool {
        torrent.readVerifiedIfCached(file: pageFile, offset: range.lowerBound, length: Int(range.count), into: &buffer)
    }

    @Test func anUnchangedFileIsReadFromTheCache() {
        var buffer = ByteBuffer()
        #expect(cachedRead(1_000..<39_000, into: &buffer))
        #expect(Array(buffer: buffer) == Array(page[1_000..<39_000]))
    }

    @Test func aBufferStillHeldElsewhereIsNeverWrittenInto() {
        var buffer = ByteBuffer()
        #expect(cachedRead(0..<20_000, into: &buffer))
        let sent = buffer  // what a connection is still writing
        #expect(cachedRead(20_000..<40_000, into: &buffer))
        #expect(Array(buffer: sent) == Array(page[0..<20_000]))
        #expect(Array(buffer: buffer) == Array(page[20_000..<40_000]))
    }

    @Test func aFileRewrittenAtItsSizeIsLeftToTheHashingRead() throws {
        try Data(page).write(to: URL(fileURLWithPath: pagePath))  // the same bytes, another identity
        var buffer = ByteBuffer()
        #expect(!cachedRead(0..<20_000, into: &buffer))
        #expect(buffer.readableBytes == 0)
        #expect(Array(buffer: try torrent.readVerified(file: pageFile, offset: 0, length: 20_000)) == Array(page[0..<20_000]))
    }

    @Test func anAppendedFileIsLeftToTheReadThatWithdrawsIt() throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: pagePath))
        try handle.seekToEnd()
        try handle.write(contentsOf: Array("<!-- appended -->".utf8))
        try handle.close()
        var buffer = ByteBuffer()
        #expect(!cachedRead(0..<20_000, into: &buffer))
        #expect(buffer.readableBytes == 0)
        // The fast path withdraws nothing: the usual read finds the change and reports it.
        #expect(torrent.pieces.contains(0))
        let read = ReadOutcome { () throws(SeedTorrent.ReadError) in try torrent.readVerified(file: pageFile, offset: 0, length: 100) }
        #expect(read == .changed("index.html"))
        #expect(!cachedRead(0..<100, into: &buffer))  // its pieces are no longer served
    }
}
