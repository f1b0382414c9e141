import Foundation
import Storage
import Testing
@testable import WebseedKit

#if canImport(Glibc)
import Glibc
#endif

@Suite struct DebouncerTests {
    @Test func nothingChangedNothingIsPackaged() {
        var d = Debouncer(settled: 1, quiet: 1, now: 0)
        for t in stride(from: 0.0, through: 10, by: 0.5) { #expect(d.observe(1, now: t) == nil) }
    }

    @Test func aChangeIsPackagedOnceTheDirectoryIsQuiet() {
        var d = Debouncer(settled: 1, quiet: 1, now: 0)
        #expect(d.observe(2, now: 10) == nil)
        #expect(d.observe(2, now: 10.5) == nil)
        #expect(d.observe(2, now: 11) == 2)
    }

    @Test func aDirectoryThatKeepsChangingWaitsUntilItSettles() {
        var d = Debouncer(settled: 0, quiet: 1, now: 0)
        for (i, t) in stride(from: 1.0, to: 6, by: 0.5).enumerated() { #expect(d.observe(i + 1, now: t) == nil) }
        #expect(d.observe(100, now: 6) == nil)
        #expect(d.observe(100, now: 6.5) == nil)
        #expect(d.observe(100, now: 7) == 100)
    }

    @Test func aChangeUndoneBeforeItSettledIsNotPackaged() {
        var d = Debouncer(settled: 1, quiet: 1, now: 0)
        #expect(d.observe(2, now: 1) == nil)
        #expect(d.observe(1, now: 1.5) == nil)
        #expect(d.observe(1, now: 5) == nil)
    }

    @Test func aListingHandedOutIsNotHandedOutAgainWhilePackaging() {
        var d = Debouncer(settled: 1, quiet: 1, now: 0)
        _ = d.observe(2, now: 0)
        #expect(d.observe(2, now: 1) == 2)
        #expect(d.observe(2, now: 2) == nil)
        #expect(d.observe(2, now: 30) == nil)
        d.packaged(2, now: 31)
        #expect(d.observe(2, now: 40) == nil)
    }

    @Test func aChangeDuringPackagingIsPackagedNext() {
        var d = Debouncer(settled: 1, quiet: 1, now: 0)
        _ = d.observe(2, now: 0)
        #expect(d.observe(2, now: 1) == 2)
        // The packaging listed the directory once more and saw 3 already: that is what it made.
        d.packaged(3, now: 2)
        #expect(d.observe(3, now: 2.5) == nil)
        #expect(d.observe(3, now: 10) == nil)
        // A change seen only after it packaged 2:
        var e = Debouncer(settled: 1, quiet: 1, now: 0)
        _ = e.observe(2, now: 0)
        #expect(e.observe(2, now: 1) == 2)
        #expect(e.observe(3, now: 1.5) == nil)
        e.packaged(2, now: 2)
        #expect(e.observe(3, now: 2.5) == 3)
    }

    @Test func aFailedPackagingIsTriedAgainAfterTheBackoff() {
        var d = Debouncer(settled: 1, quiet: 1, now: 0)
        _ = d.observe(2, now: 0)
        #expect(d.observe(2, now: 1) == 2)
        d.failed(now: 2)
        #expect(d.observe(2, now: 5) == nil)
        #expect(d.observe(2, now: 11.5) == nil)
        #expect(d.observe(2, now: 12) == 2)
    }
}

@Suite struct SnapshotTests {
    private func scratch() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("webseed-snapshot-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/site/css", withIntermediateDirectories: true)
        try Data("old index".utf8).write(to: URL(fileURLWithPath: dir + "/site/index.html"))
        try Data("old css".utf8).write(to: URL(fileURLWithPath: dir + "/site/css/a.css"))
        return dir
    }

    @Test func aSnapshotKeepsTheBytesOfFilesReplacedOrRemovedInTheDirectory() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let listing = try SiteWalker.walk(dir + "/site")
        #expect(try Snapshot.make(listing.files, into: dir + "/snap") == nil)
        var a = stat(), b = stat()
        #expect(stat(dir + "/site/index.html", &a) == 0 && stat(dir + "/snap/index.html", &b) == 0)
        #expect(a.st_ino == b.st_ino)
        // Saved by rename, and removed:
        try Data("new index".utf8).write(to: URL(fileURLWithPath: dir + "/site/index.html"), options: .atomic)
        try FileManager.default.removeItem(atPath: dir + "/site/css/a.css")
        #expect(FileManager.default.contents(atPath: dir + "/snap/index.html") == Data("old index".utf8))
        #expect(FileManager.default.contents(atPath: dir + "/snap/css/a.css") == Data("old css".utf8))
        Snapshot.remove(dir + "/snap")
        #expect(!FileManager.default.fileExists(atPath: dir + "/snap"))
        #expect(FileManager.default.contents(atPath: dir + "/site/index.html") == Data("new index".utf8))
    }

    @Test func aFileThatVanishedBeforeItWasLinkedFailsAndLeavesNothing() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let listing = try SiteWalker.walk(dir + "/site")
        try FileManager.default.removeItem(atPath: dir + "/site/index.html")
        #expect(throws: ValidationFailure.self) { try Snapshot.make(listing.files, into: dir + "/snap") }
        #expect(!FileManager.default.fileExists(atPath: dir + "/snap"))
    }
}
