import Testing
@testable import Gateway

@Suite struct SiteIndexTests {
    let site: FakeSite
    let index: SiteIndex

    init() throws {
        site = try FakeSite(files: ["index.html": content(1, 10), "404.html": content(2, 10), "docs/a.txt": content(3, 10),
                                    "docs/guide/index.html": content(4, 10), "café au lait.txt": content(5, 10)])
        index = SiteIndex(site.torrent)
    }

    @Test func filesFoldersAndTheirIndexPages() {
        #expect(index.match([""], query: nil, spa: false) == .file(site.file("index.html"), found: true))
        #expect(index.match(["docs", "a.txt"], query: nil, spa: false) == .file(site.file("docs/a.txt"), found: true))
        #expect(index.match(["docs", "guide", ""], query: nil, spa: false) == .file(site.file("docs/guide/index.html"), found: true))
        #expect(index.match(["docs", ""], query: nil, spa: false)
            == .listing(folder: "docs", [.init(name: "a.txt", isFolder: false, size: 10), .init(name: "guide", isFolder: true, size: 0)]))
        #expect(index.match(["café au lait.txt"], query: nil, spa: false) == .file(site.file("café au lait.txt"), found: true))
    }

    @Test func aFolderWithoutItsSlashMovesKeepingTheQuery() {
        #expect(index.match(["docs", "guide"], query: "x=1", spa: false) == .folderSlash("guide/?x=1"))
        #expect(index.match(["docs"], query: nil, spa: false) == .folderSlash("docs/"))
    }

    @Test func missingPaths() {
        #expect(index.match(["nothing.txt"], query: nil, spa: false) == .file(site.file("404.html"), found: false))
        #expect(index.match(["app", "route"], query: nil, spa: true) == .file(site.file("index.html"), found: true))
        #expect(index.match(["app", "missing.js"], query: nil, spa: true) == .file(site.file("404.html"), found: false),
                "a path with an extension is a missing file, not an app route")
        let bare = SiteIndex(try! FakeSite(files: ["a.txt": content(6, 1)]).torrent)
        #expect(bare.match(["b.txt"], query: nil, spa: true) == .notFound)
    }
}
