import Foundation
import Testing
import Metainfo
import Bencode
import Hashing
import Merkle
@testable import Storage

#if canImport(Glibc)
import Glibc
#endif

private func makeSite(_ tmp: TempDirectory) throws -> String {
    try tmp.write("site/index.html", "<h1>hello</h1>")
    try tmp.write("site/assets/app.js", "console.log(1)")
    try tmp.write("site/assets.json", "[]")
    try tmp.write("site/.well-known/security.txt", "Contact: mailto:a@b.invalid")
    try tmp.write("site/empty.txt", [])
    return tmp.path + "/site"
}

private func create(_ dir: String, _ configure: (inout TorrentCreator.Request) -> Void = { _ in }) throws -> TorrentCreator.Outcome {
    var request = TorrentCreator.Request(directory: dir)
    configure(&request)
    let listing = try TorrentCreator.list(request)
    return try TorrentCreator.create(request, listing: listing)
}

@Suite struct Walking {
    @Test func versionControlAndOSClutterAreLeftOutButSiteDotfilesStay() throws {
        let tmp = try TempDirectory()
        let dir = try makeSite(tmp)
        try tmp.write("site/.git/HEAD", "ref: refs/heads/main")
        try tmp.write("site/.DS_Store", [0, 1])
        try tmp.write("site/img/._photo.png", [0])
        try tmp.write("site/img/Thumbs.db", [0])
        let paths = try SiteWalker.walk(dir).files.map(\.pathString).sorted()
        #expect(paths == [".well-known/security.txt", "assets.json", "assets/app.js", "empty.txt", "index.html"])

        var keepAll = SiteWalker.Options()
        keepAll.useDefaultExcludes = false
        #expect(try SiteWalker.walk(dir, options: keepAll).files.count == 9)
    }

    @Test func excludeGlobsMatchNamesAnywhereOrPathsFromTheRoot() throws {
        let tmp = try TempDirectory()
        let dir = try makeSite(tmp)
        try tmp.write("site/maps/app.js.map", "{}")
        try tmp.write("site/drafts/post.html", "x")
        var options = SiteWalker.Options()
        options.excludes = ["*.map", "/drafts", "assets/*.js"]
        let paths = try SiteWalker.walk(dir, options: options).files.map(\.pathString).sorted()
        #expect(paths == [".well-known/security.txt", "assets.json", "empty.txt", "index.html"])
    }

    @Test func symlinksAreSkippedWithAWarningUnlessFollowedAndNeverLeaveTheRoot() throws {
        let tmp = try TempDirectory()
        let dir = try makeSite(tmp)
        try tmp.write("outside/secret.txt", "secret")
        #expect(symlink(tmp.path + "/outside/secret.txt", dir + "/leak.txt") == 0)
        #expect(symlink("index.html", dir + "/home.html") == 0)
        #expect(symlink(".", dir + "/assets/loop") == 0)

        let skipped = try SiteWalker.walk(dir)
        #expect(!skipped.files.contains { $0.pathString == "leak.txt" || $0.pathString == "home.html" })
        #expect(skipped.warnings.filter { $0.contains("skipped symlink") }.count == 3)

        var follow = SiteWalker.Options()
        follow.followSymlinks = true
        let followed = try SiteWalker.walk(dir, options: follow)
        let paths = followed.files.map(\.pathString)
        #expect(paths.contains("home.html"))
        #expect(!paths.contains("leak.txt"))
        #expect(followed.warnings.contains { $0.contains("points outside the directory") })
        #expect(!paths.contains { $0.hasPrefix("assets/loop/assets/loop") })
    }

    /// Directories are listed a level at a time on several threads; what comes out is what a
    /// serial walk gives: files in file-tree order (names by raw bytes, files and folders
    /// interleaved), warnings in the same order, and the first error in that order.
    @Test(arguments: [1, 2, 4])
    func listingByLevelsGivesTheSerialOrder(threads: Int) throws {
        let tmp = try TempDirectory()
        for path in ["b.txt", "a/z.txt", "a/b/c/d/deep.txt", "a/b/c.txt", "a/ab.txt", "c/x/y.txt", "a.txt", "c/w.txt", "b/one.txt"] {
            try tmp.write("site/" + path, path)
        }
        #expect(symlink("b.txt", tmp.path + "/site/a/b/link") == 0)
        #expect(symlink("one.txt", tmp.path + "/site/b/alias") == 0)
        var options = SiteWalker.Options()
        options.threads = threads
        let walked = try SiteWalker.walk(tmp.path + "/site", options: options)
        #expect(walked.files.map(\.pathString) == ["a/ab.txt", "a/b/c/d/deep.txt", "a/b/c.txt", "a/z.txt", "a.txt",
                                                   "b/one.txt", "b.txt", "c/w.txt", "c/x/y.txt"])
        #expect(walked.warnings.map { $0.split(separator: " ")[2] } == ["\(tmp.path)/site/a/b/link", "\(tmp.path)/site/b/alias"])

        options.maxFiles = 8
        #expect(throws: StorageError.tooManyFiles(limit: 8)) { try SiteWalker.walk(tmp.path + "/site", options: options) }
        options.maxFiles = 100

        // Two names that are not UTF-8: the one a serial walk meets first is reported, though
        // the other, nearer the root, is listed first.
        for raw in [Array("site/a/b/c/d/early-".utf8) + [0xFF], Array("site/c/late-".utf8) + [0xFE]] {
            let path = Array((tmp.path + "/").utf8) + raw + [0]
            let fd = path.withUnsafeBufferPointer { open(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), O_CREAT | O_WRONLY, 0o644) }
            #expect(fd >= 0)
            close(fd)
        }
        #expect {
            try SiteWalker.walk(tmp.path + "/site", options: options)
        } throws: { error in
            guard case StorageError.invalidName(let p, _) = error else { return false }
            return p.hasSuffix("a/b/c/d/early-\u{FFFD}")
        }
    }

    @Test func namesThatAreNotUTF8AreAClearError() throws {
        let tmp = try TempDirectory()
        let dir = try makeSite(tmp)
        var path = Array((dir + "/bad-").utf8)
        path += [0xff, 0xfe]
        path.append(0)
        let fd = path.withUnsafeBufferPointer { open(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), O_CREAT | O_WRONLY, 0o644) }
        #expect(fd >= 0)
        close(fd)
        #expect {
            try SiteWalker.walk(dir)
        } throws: { error in
            guard case StorageError.invalidName(let p, let reason) = error else { return false }
            return p.hasSuffix("bad-\u{FFFD}\u{FFFD}") && reason.contains("not valid UTF-8")
        }
    }

    @Test func missingEmptyAndNonDirectoryInputsAreErrors() throws {
        let tmp = try TempDirectory()
        #expect(throws: StorageError.notFound(tmp.path + "/nope")) { try SiteWalker.walk(tmp.path + "/nope") }
        try tmp.mkdir("empty/sub")
        #expect(throws: StorageError.emptyDirectory(tmp.path + "/empty")) { try SiteWalker.walk(tmp.path + "/empty") }
        try tmp.write("file.txt", "x")
        #expect(throws: StorageError.notADirectory(tmp.path + "/file.txt")) { try SiteWalker.walk(tmp.path + "/file.txt") }
    }
}

@Suite struct Creating {
    @Test func writesBesideTheDirectoryByDefaultAndRefusesToOverwrite() throws {
        let tmp = try TempDirectory()
        let dir = try makeSite(tmp)
        let outcome = try create(dir)
        #expect(outcome.outputPath == tmp.url.resolvingSymlinksInPath().path + "/site.torrent")
        let written = try [UInt8](Data(contentsOf: URL(fileURLWithPath: outcome.outputPath!)))
        #expect(written == outcome.torrentBytes)
        #expect(throws: StorageError.outputExists(outcome.outputPath!)) { try create(dir) }
        #expect(throws: Never.self) { try create(dir) { $0.overwrite = true } }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: tmp.path).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty)
    }

    @Test func refusesAnOutputInsideTheDirectory() throws {
        let tmp = try TempDirectory()
        let dir = try makeSite(tmp)
        #expect { try create(dir) { $0.output = dir + "/assets/../site.torrent" } } throws: { error in
            if case StorageError.outputInsideSource = error { return true } else { return false }
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/site.torrent"))
    }

    @Test func theSameContentGivesTheSameInfoHashWhateverTheMtimesOrCreationOrder() throws {
        let a = try TempDirectory(), b = try TempDirectory()
        let dirA = try makeSite(a)
        // Same files written in the opposite order, at other times.
        try b.write("site/empty.txt", [])
        try b.write("site/.well-known/security.txt", "Contact: mailto:a@b.invalid")
        try b.write("site/assets.json", "[]")
        try b.write("site/assets/app.js", "console.log(1)")
        try b.write("site/index.html", "<h1>hello</h1>")
        let old = [timespec(tv_sec: 1_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, b.path + "/site/index.html", old, 0) == 0)
        let ha = try create(dirA).metainfo
        let hb = try create(b.path + "/site").metainfo
        #expect(ha.v2InfoHash == hb.v2InfoHash)
        #expect(ha.v1InfoHash == hb.v1InfoHash)
        #expect(ha.infoBytes == hb.infoBytes)
    }

    @Test func aFileThatChangesAfterListingIsDetected() throws {
        let tmp = try TempDirectory()
        let dir = try makeSite(tmp)
        let request = TorrentCreator.Request(directory: dir)
        let listing = try TorrentCreator.list(request)
        try tmp.write("site/index.html", "<h1>changed!</h1>")
        #expect { try TorrentCreator.create(request, listing: listing) } throws: { error in
            guard case StorageError.changedWhileHashing(let p) = error else { return false }
            return p.hasSuffix("index.html")
        }
        #expect(!FileManager.default.fileExists(atPath: tmp.path + "/site.torrent"))
    }

    /// Large files are hashed from a mapping, small ones read: both give the tree and the
    /// v1 pieces of the bytes, and a large file cut short after listing is reported.
    @Test(arguments: [16_384, 65_536, 8 << 20])
    func aLargeFileHashesLikeItsBytesAndIsCaughtWhenCutShort(pieceLength: Int) throws {
        let tmp = try TempDirectory()
        let bytes = (0..<(9 << 20) + 12_345).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }
        try tmp.write("site/big.bin", bytes)
        try tmp.write("site/small.txt", "small")
        var request = TorrentCreator.Request(directory: tmp.path + "/site")
        request.pieceLength = pieceLength
        let listing = try TorrentCreator.list(request)
        let hashed = try TorrentCreator.create(request, listing: listing, write: false).hashed
        let big = try #require(hashed.first { $0.path == ["big.bin"] })
        let leaves = stride(from: 0, to: bytes.count, by: 16_384).map { Digests.sha256(bytes[$0..<min($0 + 16_384, bytes.count)]) }
        #expect(big.tree?.root == MerkleTree(leaves: leaves).root)
        let pieces = stride(from: 0, to: bytes.count, by: pieceLength).map { start in
            let piece = Array(bytes[start..<min(start + pieceLength, bytes.count)])
            return Digests.sha1(piece + [UInt8](repeating: 0, count: pieceLength - piece.count))  // padded: pad files follow
        }
        #expect(big.v1PieceHashes == pieces)

        #expect(truncate(tmp.path + "/site/big.bin", 5 << 20) == 0)
        #expect(throws: StorageError.changedWhileHashing(tmp.path + "/site/big.bin")) {
            try TorrentCreator.create(request, listing: listing, write: false)
        }
    }

    @Test func aFileSwappedForAFIFOOrADirectoryAfterListingIsRefusedWithoutBlocking() throws {
        let tmp = try TempDirectory()
        let dir = try makeSite(tmp)
        let request = TorrentCreator.Request(directory: dir)
        let listing = try TorrentCreator.list(request)
        #expect(unlink(dir + "/index.html") == 0 && mkfifo(dir + "/index.html", 0o600) == 0)
        #expect(throws: StorageError.notARegularFile(dir + "/index.html", kind: "a FIFO")) {
            try TorrentCreator.create(request, listing: listing, write: false)
        }
        #expect(unlink(dir + "/index.html") == 0 && mkdir(dir + "/index.html", 0o700) == 0)
        #expect(throws: StorageError.notARegularFile(dir + "/index.html", kind: "a directory")) {
            try TorrentCreator.create(request, listing: listing, write: false)
        }
    }

    @Test func aSameSizedRewriteIsCaughtByItsModificationTime() throws {
        let tmp = try TempDirectory()
        let dir = try makeSite(tmp)
        let request = TorrentCreator.Request(directory: dir)
        let listing = try TorrentCreator.list(request)
        try tmp.write("site/index.html", "<h1>HELLO</h1>")  // same length
        let later = [timespec(tv_sec: 2_000_000_000, tv_nsec: 1), timespec(tv_sec: 2_000_000_000, tv_nsec: 1)]
        #expect(utimensat(AT_FDCWD, dir + "/index.html", later, 0) == 0)
        #expect(throws: StorageError.self) { try TorrentCreator.create(request, listing: listing, write: false) }
    }
}

@Suite struct Verifying {
    @Test func namesEveryMissingResizedOrChangedFile() throws {
        let tmp = try TempDirectory()
        let dir = try makeSite(tmp)
        try tmp.write("site/big.bin", vectorData(seed: "v", length: 200_000))
        for hybrid in [true, false] {
            let m = try create(dir) { $0.overwrite = true; $0.hybrid = hybrid }.metainfo
            #expect(SiteVerifier.verify(m, directory: dir).ok)

            let copy = try TempDirectory()
            try FileManager.default.copyItem(atPath: dir, toPath: copy.path + "/c")
            let c = copy.path + "/c"
            try FileManager.default.removeItem(atPath: c + "/assets/app.js")
            try copy.write("c/index.html", "<h1>hello!</h1>")
            var big = vectorData(seed: "v", length: 200_000)
            big[150_000] ^= 1
            try copy.write("c/big.bin", big)
            let report = SiteVerifier.verify(m, directory: c)
            #expect(report.problems.map(\.description).sorted() == [
                "content differs: big.bin", "missing: assets/app.js", "wrong size: index.html (15 bytes, expected 14)",
            ])
        }
    }

    @Test func v1TorrentsAreVerifiedPieceByPiece() throws {
        // A v1 torrent made by hand: two files whose pieces span the boundary.
        let tmp = try TempDirectory()
        let a = vectorData(seed: "a", length: 20_000), b = vectorData(seed: "b", length: 30_000)
        try tmp.write("d/a.bin", a)
        try tmp.write("d/b.bin", b)
        let stream = a + b
        var pieces: [UInt8] = []
        var i = 0
        while i < stream.count { pieces += Digests.sha1(Array(stream[i..<min(i + 16_384, stream.count)])).bytes; i += 16_384 }
        let info = BValue.dictionary(BDictionary([
            ("name", .string("d")), ("piece length", .integer(16_384)), ("pieces", .bytes(pieces)),
            ("files", .list([
                .dictionary(BDictionary([("length", .integer(20_000)), ("path", .list([.string("a.bin")]))])),
                .dictionary(BDictionary([("length", .integer(30_000)), ("path", .list([.string("b.bin")]))])),
            ])),
        ]))
        let m = try Metainfo(bytes: BValue.dictionary(BDictionary([("info", info)])).encoded())
        #expect(SiteVerifier.verify(m, directory: tmp.path + "/d").ok)
        var changed = b
        changed[29_000] ^= 0xff
        try tmp.write("d/b.bin", changed)
        #expect(SiteVerifier.verify(m, directory: tmp.path + "/d").problems == [.contentDiffers("b.bin")])
    }
}

/// What libtorrent would refuse or rename is not published (finding 6).
@Suite struct CreatingWhatLibtorrentLoads {
    @Test func aSiteOfOnlyEmptyFilesIsRefused() throws {
        let tmp = try TempDirectory()
        try tmp.write("site/a.txt", [])
        try tmp.write("site/b/c.txt", [])
        #expect(throws: MetainfoError.emptyTorrent) { try create(tmp.path + "/site") }
    }

    @Test(arguments: ["a\nb.html", "\u{202E}lmth.exe", "back\\slash.txt", "bell\u{07}.txt"])
    func aNameAReaderWouldChangeIsRefused(_ name: String) throws {
        let tmp = try TempDirectory()
        try tmp.write("site/index.html", "<h1>hi</h1>")
        try tmp.write("site/" + name, "x")
        #expect {
            try create(tmp.path + "/site")
        } throws: { error in
            guard case MetainfoError.invalidPathComponent(let path, _) = error else { return false }
            return path == name && !error.localizedDescription.isEmpty && !"\(error)".contains("\n")
        }
    }
}
