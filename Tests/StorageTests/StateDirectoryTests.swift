import Foundation
import Testing
import Hashing
import Metainfo
@testable import Storage

#if canImport(Glibc)
import Glibc
#endif

private func site(_ tmp: TempDirectory) throws -> (Metainfo, String) {
    try tmp.write("s/index.html", vectorData(seed: "i", length: 70_000))
    try tmp.write("s/app.js", vectorData(seed: "a", length: 900))
    var request = TorrentCreator.Request(directory: tmp.path + "/s")
    request.pieceLength = 16_384
    let listing = try TorrentCreator.list(request)
    return (try TorrentCreator.create(request, listing: listing, write: false).metainfo, listing.root)
}

private func isRegularFile(_ path: String) -> Bool {
    var st = stat()
    return lstat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFREG
}

/// Finding 3: whatever lies in the state directory under a record's name, reading it
/// never blocks and never reads more than a record can be.
@Suite struct StateDirectoryFaults {
    @Test func aFIFOAsResumeRecordIsRefusedWithoutBlocking() throws {
        let tmp = try TempDirectory()
        let (m, dir) = try site(tmp)
        let resume = tmp.path + "/r.resume"
        #expect(mkfifo(resume, 0o600) == 0)
        // Before the fix this call never returned: open(2) of a FIFO without a writer blocks.
        let data = LocalDataVerifier.verify(m, directory: dir, resumePath: resume)
        #expect(data.resumeProblem == .notARegularFile(resume, kind: "a FIFO"))
        #expect(data.pieces.isFull && data.filesHashed == 2)
        #expect(isRegularFile(resume), "the FIFO is replaced by a real record")
        #expect(LocalDataVerifier.verify(m, directory: dir, resumePath: resume).filesFromResume == 2)
    }

    @Test func aFIFOAsDownloadRecordIsRefusedWithoutBlocking() throws {
        let tmp = try TempDirectory()
        let (m, dir) = try site(tmp)
        let record = tmp.path + "/d.record"
        #expect(mkfifo(record, 0o600) == 0)
        #expect(throws: StorageError.notARegularFile(record, kind: "a FIFO")) {
            try DownloadRecord.checkedVouched(path: record, metainfo: m, directory: dir)
        }
        #expect(DownloadRecord.vouched(path: record, metainfo: m, directory: dir) == nil)
    }

    @Test func aDirectoryAsRecordIsNamed() throws {
        let tmp = try TempDirectory()
        let (m, dir) = try site(tmp)
        try tmp.mkdir("r.resume")
        let data = LocalDataVerifier.verify(m, directory: dir, resumePath: tmp.path + "/r.resume")
        #expect(data.resumeProblem == .notARegularFile(tmp.path + "/r.resume", kind: "a directory"))
        #expect(data.resumeProblem?.description == "\(tmp.path)/r.resume is a directory, not a regular file; it was not read (remove it)")
        #expect(data.pieces.isFull)
    }

    @Test func errorsNamingPathsStayOnOneLine() {
        let e = StorageError.invalidName(path: "site/a\nb\u{1B}]0;owned\u{07}", reason: "x")
        #expect(e.description == "cannot package site/a\\nb\\u{1B}]0;owned\\u{7}: x")
    }

    @Test func stateFilesAreReadWithinTheirBound() throws {
        let tmp = try TempDirectory()
        try tmp.write("small", [1, 2, 3])
        try tmp.write("big", [UInt8](repeating: 7, count: 4097))
        #expect(try StateFile.read(tmp.path + "/small", maxSize: 3) == [1, 2, 3])
        #expect(try StateFile.read(tmp.path + "/absent", maxSize: 3) == nil)
        #expect(throws: StorageError.stateFileTooLarge(tmp.path + "/big", size: 4097, limit: 4096)) {
            try StateFile.read(tmp.path + "/big", maxSize: 4096)
        }
        #expect(throws: StorageError.notARegularFile("/dev/zero", kind: "a character device")) {
            try StateFile.read("/dev/zero", maxSize: 4096)
        }
    }
}

/// Finding 4: the resume record trusts a file only while it is the very file that verified.
@Suite struct ResumeIdentity {
    /// Rewrites one byte in place (same inode and size) and puts the mtime back, as
    /// tools that pin mtimes do. The new ctime is all that tells.
    private func editKeepingSizeAndMtime(_ path: String) throws {
        let fd = open(path, O_RDWR)
        try #require(fd >= 0)
        defer { close(fd) }
        var before = stat()
        try #require(fstat(fd, &before) == 0)
        var byte: UInt8 = 0
        try #require(pread(fd, &byte, 1, 100) == 1)
        byte ^= 1
        try #require(pwrite(fd, &byte, 1, 100) == 1)
        let times = [before.st_atim, before.st_mtim]
        var after = stat()
        // ctime comes from a coarse clock: on a fast machine the edit can share the tick the
        // file was written in, so the mtime is put back until ctime moves on (no sleep).
        repeat {
            try #require(futimens(fd, times) == 0)
            try #require(fstat(fd, &after) == 0)
        } while after.st_ctim.tv_sec == before.st_ctim.tv_sec && after.st_ctim.tv_nsec == before.st_ctim.tv_nsec
        try #require(after.st_size == before.st_size)
        try #require(after.st_mtim.tv_sec == before.st_mtim.tv_sec && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec)
    }

    @Test func aFileEditedWithSizeAndMtimePutBackIsHashedAgain() throws {
        let tmp = try TempDirectory()
        let (m, dir) = try site(tmp)
        let resume = tmp.path + "/r.resume"
        #expect(LocalDataVerifier.verify(m, directory: dir, resumePath: resume).pieces.isFull)
        try editKeepingSizeAndMtime(dir + "/index.html")
        let again = LocalDataVerifier.verify(m, directory: dir, resumePath: resume)
        #expect(again.filesHashed == 1 && again.filesFromResume == 1)
        #expect(again.problems == [.contentDiffers("index.html")])
        let index = m.files.first { $0.pathString == "index.html" }!
        #expect(!again.pieces.contains(Int(index.offset / 16_384)))
    }

    @Test func aRecordInTheOldFormatMeansHashingAgainNotAnError() throws {
        let tmp = try TempDirectory()
        let (m, dir) = try site(tmp)
        // A "WSRESUM1" record as the previous release wrote it: size, mtime and leaves,
        // all matching the files, but no ctime, inode or device to prove them unchanged.
        var out = Array("WSRESUM1".utf8) + m.v2InfoHash!.bytes
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { out += $0 } }
        func i64(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        u32(m.files.count)
        for f in m.files {
            var st = stat()
            try #require(stat(dir + "/" + f.pathString, &st) == 0)
            i64(Int64(st.st_size)); i64(Int64(st.st_mtim.tv_sec)); i64(Int64(st.st_mtim.tv_nsec))
            out.append(1)
            let content = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + f.pathString)))
            let leaves = stride(from: 0, to: content.count, by: 16_384).map { Digests.sha256(Array(content[$0..<min($0 + 16_384, content.count)])) }
            u32(leaves.count)
            for l in leaves { out += l.bytes }
        }
        u32(0)
        out += Digests.sha256(out).bytes
        try tmp.write("r.resume", out)
        let data = LocalDataVerifier.verify(m, directory: dir, resumePath: tmp.path + "/r.resume")
        #expect(data.resumeProblem == nil)
        #expect(data.filesFromResume == 0 && data.filesHashed == 2 && data.pieces.isFull)
    }

    @Test func aDownloadRecordInTheOldFormatVouchesForNothing() throws {
        let tmp = try TempDirectory()
        let (m, dir) = try site(tmp)
        // "WSFETCH1": size, mtime, ctime and inode, but no device.
        var out = Array("WSFETCH1".utf8) + m.v2InfoHash!.bytes
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { out += $0 } }
        func i64(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        u32(dir.utf8.count)
        out += Array(dir.utf8)
        u32(m.files.count)
        for f in m.files {
            var st = stat()
            try #require(lstat(dir + "/" + f.pathString, &st) == 0)
            out.append(1)
            i64(Int64(st.st_size)); i64(Int64(st.st_mtim.tv_sec)); i64(Int64(st.st_mtim.tv_nsec))
            i64(Int64(st.st_ctim.tv_sec)); i64(Int64(st.st_ctim.tv_nsec)); i64(Int64(bitPattern: UInt64(st.st_ino)))
        }
        let all = PieceSet(count: m.pieceCount, full: true)
        u32(all.bytes.count)
        out += all.bytes
        out += Digests.sha256(out).bytes
        try tmp.write("d.record", out)
        let vouched = try DownloadRecord.checkedVouched(path: tmp.path + "/d.record", metainfo: m, directory: dir)
        #expect(vouched?.isEmpty == true)
        // The current format vouches for the same files.
        try DownloadRecord(metainfo: m, directory: dir, pieces: all).save(metainfo: m, path: tmp.path + "/d2.record")
        #expect(DownloadRecord.vouched(path: tmp.path + "/d2.record", metainfo: m, directory: dir)?.isFull == true)
    }
}

/// The same hazard in the site directory: a file swapped for a FIFO after it verified.
@Suite struct SiteFileSwappedForAFIFO {
    @Test func thePieceReaderRefusesItWithoutBlocking() throws {
        let tmp = try TempDirectory()
        let (m, dir) = try site(tmp)
        let reader = PieceReader(metainfo: m, directory: dir)
        #expect(unlink(dir + "/app.js") == 0 && mkfifo(dir + "/app.js", 0o600) == 0)
        let app = m.files.first { $0.pathString == "app.js" }!
        var out = [UInt8](repeating: 0, count: 900)
        #expect(throws: StorageError.notARegularFile(dir + "/app.js", kind: "a FIFO")) {
            try out.withUnsafeMutableBytes { try reader.read(offset: app.offset, into: $0) }
        }
    }
}
