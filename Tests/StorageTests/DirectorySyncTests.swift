import Foundation
import Hashing
import Storage
import Testing

/// Keeping a directory in step with a site's newest version: the plan (pure) and carrying
/// it out (unchanged files untouched, changed ones renamed in, removed ones deleted,
/// nothing else touched).
@Suite struct DirectorySyncTests {
    typealias Content = DirectorySync.Content

    private static func root(_ text: String) -> Content { .root(Digests.sha256(Array(text.utf8))) }

    @Test func thePlanKeepsReplacesAndRemovesByPathAndContent() {
        let old: [String: Content] = ["index.html": Self.root("v1 index"), "same.css": Self.root("css"), "gone.txt": Self.root("gone"),
                                      "img/logo.png": Self.root("logo"), "empty": .empty]
        let new: [String: Content] = ["index.html": Self.root("v2 index"), "same.css": Self.root("css"), "img/logo.png": Self.root("logo"),
                                      "new/page.html": Self.root("page"), "empty": .empty, "moved.css": Self.root("css")]
        let plan = DirectorySync.plan(old: old, new: new)
        #expect(plan.keep == ["empty", "img/logo.png", "same.css"])
        #expect(plan.replace == ["index.html", "moved.css", "new/page.html"])
        #expect(plan.remove == ["gone.txt"])
    }

    @Test func withNothingKnownEveryFileIsPutInAndNothingRemoved() {
        let new: [String: Content] = ["a": Self.root("a"), "b/c": Self.root("c")]
        #expect(DirectorySync.plan(old: [:], new: new) == DirectorySync.Plan(keep: [], replace: ["a", "b/c"], remove: []))
    }

    @Test func theSameVersionAgainChangesNothing() {
        let listing: [String: Content] = ["a": Self.root("a"), "b/c": Self.root("c")]
        #expect(DirectorySync.plan(old: listing, new: listing) == DirectorySync.Plan(keep: ["a", "b/c"], replace: [], remove: []))
    }

    @Test func applyingTouchesOnlyWhatChanged() throws {
        let t = try TempDirectory("webseed-sync")
        let dir = t.path + "/site", staging = t.path + "/staging"
        // The directory holds version 1, plus a file of the user's that no version has.
        try t.write("site/same.css", "css")
        try t.write("site/index.html", "v1 index")
        try t.write("site/old/gone.txt", "gone")
        try t.write("site/notes.txt", "mine")
        // Staging holds version 2, complete.
        try t.write("staging/same.css", "css")
        try t.write("staging/index.html", "v2 index")
        try t.write("staging/new/page.html", "page")
        let old: [String: Content] = ["same.css": Self.root("css"), "index.html": Self.root("v1 index"), "old/gone.txt": Self.root("gone")]
        let new: [String: Content] = ["same.css": Self.root("css"), "index.html": Self.root("v2 index"), "new/page.html": Self.root("page"),
                                      "empty.txt": .empty]
        let attributes = { (p: String) in try FileManager.default.attributesOfItem(atPath: dir + "/" + p) }
        let sameBefore = try attributes("same.css")
        let notesBefore = try attributes("notes.txt")

        let applied = try DirectorySync.apply(DirectorySync.plan(old: old, new: new), new: new, staging: staging, directory: dir)

        #expect(applied.replaced == 3 && applied.removed == 1 && applied.copied == 0)
        let text = { (p: String) in FileManager.default.contents(atPath: dir + "/" + p).map { String(decoding: $0, as: UTF8.self) } }
        #expect(text("index.html") == "v2 index")
        #expect(text("new/page.html") == "page")
        #expect(text("empty.txt") == "")
        #expect(!FileManager.default.fileExists(atPath: dir + "/old/gone.txt"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/old"), "a folder emptied by removals goes too")
        let sameAfter = try attributes("same.css")
        #expect(sameAfter[.systemFileNumber] as? Int == sameBefore[.systemFileNumber] as? Int)
        #expect(sameAfter[.modificationDate] as? Date == sameBefore[.modificationDate] as? Date, "an unchanged file is not touched")
        #expect(try attributes("notes.txt")[.systemFileNumber] as? Int == notesBefore[.systemFileNumber] as? Int, "nor is the user's own file")
        let staged = try FileManager.default.attributesOfItem(atPath: staging + "/index.html")[.systemFileNumber] as? Int
        #expect(try attributes("index.html")[.systemFileNumber] as? Int == staged, "moved in as a link: staging keeps its copy")
        let listing = try FileManager.default.subpathsOfDirectory(atPath: dir).sorted()
        #expect(listing == ["empty.txt", "index.html", "new", "new/page.html", "notes.txt", "same.css"], "no temporary file is left")
    }

    @Test func aKeptFileThatWentMissingIsPutBack() throws {
        let t = try TempDirectory("webseed-sync")
        try t.write("staging/a.txt", "a")
        try t.mkdir("site")
        let listing: [String: Content] = ["a.txt": Self.root("a")]
        let applied = try DirectorySync.apply(DirectorySync.plan(old: listing, new: listing), new: listing, staging: t.path + "/staging", directory: t.path + "/site")
        #expect(applied.replaced == 1)
        #expect(FileManager.default.contents(atPath: t.path + "/site/a.txt") == Data("a".utf8))
    }
}
