import Testing
@testable import Gateway

@Suite struct SitePathTests {
    @Test func plainPathsDecodeOnce() throws {
        #expect(try SitePath.segments("/") == [""])
        #expect(try SitePath.segments("/css/site.css") == ["css", "site.css"])
        #expect(try SitePath.segments("/docs/") == ["docs", ""])
        #expect(try SitePath.segments("/docs/caf%C3%A9.txt") == ["docs", "café.txt"])
        #expect(try SitePath.segments("/a%2520b") == ["a%20b"])  // decoded once only
        #expect(try SitePath.segments("/.well-known/security.txt") == [".well-known", "security.txt"])
    }

    @Test(arguments: [
        ("/../etc/passwd", SitePath.Problem.dotSegment), ("/%2e%2e/x", .dotSegment), ("/%2E%2e/x", .dotSegment),
        ("/a/./b", .dotSegment), ("/a/..", .dotSegment), ("//etc/passwd", .dotSegment), ("/a//b", .dotSegment),
        ("/..%2f..%2fetc", .encodedSeparator), ("/a%2Fb", .encodedSeparator), ("/a\\b", .backslash), ("/a%5cb", .backslash),
        ("/a%00b", .nul), ("/%c0%ae%c0%ae/x", .invalidUTF8), ("/%e0%80%ae", .invalidUTF8), ("/%ff", .invalidUTF8),
        ("/a%2", .invalidEncoding), ("/a%zz", .invalidEncoding), ("relative", .notAbsolute),
    ])
    func pathsThatCouldLeaveTheSiteAreRefused(_ path: String, _ problem: SitePath.Problem) {
        #expect(throws: problem) { try SitePath.segments(path[...]) }
    }

    @Test func aVeryLongPathIsRefused() {
        #expect(throws: SitePath.Problem.tooLong) { try SitePath.segments(("/" + String(repeating: "a", count: 9000))[...]) }
    }

    @Test func segmentsAreEncodedForLinks() {
        #expect(SitePath.encode("a&b <c>.txt") == "a%26b%20%3Cc%3E.txt")
        #expect(SitePath.encode("café") == "caf%C3%A9")
    }
}

@Suite struct ByteRangeTests {
    @Test func singleRanges() {
        #expect(ByteRange.parse("bytes=0-9", length: 100) == .partial(0..<10))
        #expect(ByteRange.parse("bytes=90-", length: 100) == .partial(90..<100))
        #expect(ByteRange.parse("bytes=-10", length: 100) == .partial(90..<100))
        #expect(ByteRange.parse("bytes=-1000", length: 100) == .partial(0..<100))
        #expect(ByteRange.parse("bytes=50-1000", length: 100) == .partial(50..<100))
        #expect(ByteRange.parse(" bytes = 1-1 ".replacingSpacesAroundEquals, length: 100) == .partial(1..<2))
    }

    @Test func unsatisfiableAndIgnored() {
        #expect(ByteRange.parse("bytes=100-", length: 100) == .unsatisfiable)
        #expect(ByteRange.parse("bytes=-0", length: 100) == .unsatisfiable)
        #expect(ByteRange.parse("bytes=0-0", length: 0) == .unsatisfiable)
        for ignored in [nil, "bytes=0-1,5-6", "bytes=5-1", "items=0-1", "bytes=a-b", "bytes=--1", "bytes=99999999999999999999-",
                        "bytes=", "bytes=-", String(repeating: "bytes=0-1", count: 100)] {
            #expect(ByteRange.parse(ignored, length: 100) == .whole, "\(ignored ?? "nil")")
        }
    }
}

@Suite struct HostNameTests {
    @Test func hostsAndSiteLabels() {
        #expect(HostName("Example.COM:8080").name == "example.com")
        #expect(HostName("abc.localhost:8080").siteLabel == "abc")
        #expect(HostName("a.b.localhost").siteLabel == nil)
        #expect(HostName("localhost:1").siteLabel == nil)
        #expect(HostName("[::1]:8080").name == "[::1]")
        #expect(HostName("[::1]:8080").isLoopbackName)
        #expect(HostName("127.0.0.1:80").isLoopbackName)
        #expect(!HostName("example.test").isLoopbackName)
    }
}

@Suite struct MIMETests {
    @Test func typesByExtension() {
        #expect(MIME.type(forPath: "index.html") == "text/html; charset=utf-8")
        #expect(MIME.type(forPath: "js/app.JS") == "text/javascript; charset=utf-8")
        #expect(MIME.type(forPath: "images/photo.png") == "image/png")
        #expect(MIME.type(forPath: "data.xyz123") == "application/octet-stream")
        #expect(MIME.type(forPath: ".htaccess") == "application/octet-stream")
    }
}

@Suite struct StatusPageTests {
    @Test func listingsEscapeNames() {
        let page = StatusPage.listing(folder: "d", entries: [.init(name: "<img src=x onerror=alert(1)>.txt", isFolder: false, size: 3)])
        #expect(!page.contains("<img src=x"))
        #expect(page.contains("&lt;img src=x onerror=alert(1)&gt;.txt"))
        #expect(page.contains("href=\"%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.txt\""))
    }

    @Test func theMagnetFieldIsReadFromJSON() {
        #expect(StatusPage.magnetField(#"{"magnet": "magnet:?xt=urn:btmh:1220ab\/c"}"#) == "magnet:?xt=urn:btmh:1220ab/c")
        #expect(StatusPage.magnetField(#"{"other":1}"#) == nil)
        #expect(StatusPage.magnetField(#"{"magnet":"unterminated}"#) == nil)
    }

    @Test func statusJSONEscapesEveryControlAndLineSeparator() {
        #expect(StatusPage.quote("a\u{1}b") == #""a\u0001b""#)
        #expect(StatusPage.quote("\u{7F}\u{85}\u{9F}") == #""\u007f\u0085\u009f""#)
        #expect(StatusPage.quote("x\u{2028}y\u{2029}") == #""x\u2028y\u2029""#)
        #expect(StatusPage.quote("é\u{A0}") == "\"é\u{A0}\"")
    }
}

private extension String {
    /// "bytes = 1-1" is not valid; only surrounding spaces are tolerated.
    var replacingSpacesAroundEquals: String { split(separator: "=").map { $0.trimmingSpaces }.joined(separator: "=") }
}
