import Foundation
import Testing
import Metainfo
@testable import Storage

#if canImport(Glibc)
import Glibc
#endif

@Suite struct LocalDataChecks {
    private func site(_ tmp: TempDirectory, hybrid: Bool = true) throws -> (Metainfo, String) {
        try tmp.write("s/index.html", vectorData(seed: "i", length: 70_000))
        try tmp.write("s/app.js", vectorData(seed: "a", length: 900))
        try tmp.write("s/empty", [])
        var request = TorrentCreator.Request(directory: tmp.path + "/s")
        request.hybrid = hybrid
        request.pieceLength = 16_384
        let listing = try TorrentCreator.list(request)
        return (try TorrentCreator.create(request, listing: listing, write: false).metainfo, listing.root)
    }

    @Test(arguments: [true, false])
    func theResumeRecordSparesUnchangedFilesAndNeverVouchesForChangedOnes(hybrid: Bool) throws {
        let tmp = try TempDirectory()
        let (m, dir) = try site(tmp, hybrid: hybrid)
        let resume = tmp.path + "/r.resume"
        let first = LocalDataVerifier.verify(m, directory: dir, resumePath: resume)
        #expect(first.pieces.isFull && first.filesHashed == 2 && first.filesFromResume == 0)
        let second = LocalDataVerifier.verify(m, directory: dir, resumePath: resume)
        #expect(second.pieces.isFull && second.filesHashed == 0 && second.filesFromResume == 2)
        #expect(second.trees.count == first.trees.count)

        // Same size, new content and mtime: hashed again, found wrong, its pieces withheld.
        var changed = vectorData(seed: "i", length: 70_000)
        changed[100] ^= 1
        try tmp.write("s/index.html", changed)
        let later = [timespec(tv_sec: 2_000_000_000, tv_nsec: 0), timespec(tv_sec: 2_000_000_000, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, dir + "/index.html", later, 0) == 0)
        let third = LocalDataVerifier.verify(m, directory: dir, resumePath: resume)
        #expect(third.problems == [.contentDiffers("index.html")])
        #expect(third.filesHashed == 1 && third.filesFromResume == 1)
        let index = m.files.first { $0.pathString == "index.html" }!
        #expect(!third.pieces.contains(Int(index.offset / 16_384)))
        #expect(third.pieces.cardinality == m.pieceCount - 5)

        // --recheck ignores the record.
        let fourth = LocalDataVerifier.verify(m, directory: dir, resumePath: resume, recheck: true)
        #expect(fourth.filesHashed == 2 && fourth.filesFromResume == 0)
    }

    @Test func freshlyHashedDataKnowsWhichFilesAreStillAsListed() throws {
        let tmp = try TempDirectory()
        try tmp.write("s/index.html", vectorData(seed: "i", length: 70_000))
        try tmp.write("s/app.js", vectorData(seed: "a", length: 900))
        let request = TorrentCreator.Request(directory: tmp.path + "/s")
        let listing = try TorrentCreator.list(request)
        let outcome = try TorrentCreator.create(request, listing: listing, write: false)
        // app.js is rewritten after hashing: it must not keep an identity that vouches for it.
        try tmp.write("s/app.js", vectorData(seed: "b", length: 900))
        let later = [timespec(tv_sec: 2_000_000_000, tv_nsec: 0), timespec(tv_sec: 2_000_000_000, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, listing.root + "/app.js", later, 0) == 0)
        let data = LocalData(metainfo: outcome.metainfo, directory: listing.root, freshlyHashed: outcome.hashed, listing: listing.files)
        let names = Set(data.generations.keys.map { outcome.metainfo.files[$0].pathString })
        #expect(names == ["index.html"])
        #expect(data.pieces.isFull && data.trees.count == 2)
    }

    @Test func aDamagedRecordIsIgnoredNotTrusted() throws {
        let tmp = try TempDirectory()
        let (m, dir) = try site(tmp)
        let resume = tmp.path + "/r.resume"
        _ = LocalDataVerifier.verify(m, directory: dir, resumePath: resume)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: resume)))
        bytes[60] ^= 0xff
        try Data(bytes).write(to: URL(fileURLWithPath: resume))
        let again = LocalDataVerifier.verify(m, directory: dir, resumePath: resume)
        #expect(again.filesFromResume == 0 && again.filesHashed == 2 && again.pieces.isFull)
        try Data("not a resume record".utf8).write(to: URL(fileURLWithPath: resume))
        #expect(LocalDataVerifier.verify(m, directory: dir, resumePath: resume).filesFromResume == 0)
    }

    @Test func missingAndResizedFilesAreNamed() throws {
        let tmp = try TempDirectory()
        let (m, dir) = try site(tmp)
        try FileManager.default.removeItem(atPath: dir + "/app.js")
        try tmp.write("s/index.html", [1, 2, 3])
        let data = LocalDataVerifier.verify(m, directory: dir, resumePath: nil)
        #expect(Set(data.problems.map(\.description)) == ["missing: app.js", "wrong size: index.html (3 bytes, expected 70000)"])
        #expect(data.pieces.isEmpty)
    }

    @Test func thePieceReaderFillsGapsWithZeros() throws {
        let tmp = try TempDirectory()
        let (m, dir) = try site(tmp)
        let reader = PieceReader(metainfo: m, directory: dir)
        let app = m.files.first { $0.pathString == "app.js" }!
        var out = [UInt8](repeating: 0xee, count: 16_384)
        try out.withUnsafeMutableBytes { try reader.read(offset: app.offset, into: $0) }
        #expect(Array(out[..<900]) == vectorData(seed: "a", length: 900))
        #expect(out[900...].allSatisfy { $0 == 0 })
    }
}
