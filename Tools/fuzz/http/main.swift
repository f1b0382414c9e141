// libFuzzer target for what the gateway decides from a request before touching a site:
// the request path (`SitePath.segments`), Host (`HostName`) and routing
// (`RequestRouter.route`), what a path names in a site (`SiteIndex.match`, on a fixed site,
// and `WebSeedFile.resolve` for a web seed's paths), and the Range header (`ByteRange.parse`).
// Sources/Gateway/{SitePath,Route,SiteIndex,MIME,WebSeedRoute}.swift
// are compiled into this target (with Tools/fuzz/http/Hummingbird.swift standing in for
// Hummingbird); built and run by Tools/fuzz/run, never by `swift build`.
//
// Every input is input[0], flags (bits 0-2: the method, GET HEAD POST PUT DELETE OPTIONS
// CONNECT PURGE; bit 3: a site is served at `/`; bit 4: /metrics exists; bit 5: single-page
// app; bits 6-7: how many Host values, 0…3), then lines: the request target, the Range
// header, the file's length (decimal; else 1,000 × the line's length), the Hosts.
// Invariants:
// - decoded path segments never are "." or "..", never contain "/", "\" or NUL, only the last
//   may be empty, and encoding them (SitePath.encode) decodes back to the same segments;
// - routing never crashes on any method, Hosts and target; a target over 8 KiB is refused
//   as too long; a routed site path holds such segments and a canonical site id (52
//   lowercase base32 characters), a routed name path such segments and a canonical `k-…`
//   name; a move to a site's or a name's origin goes to http://<id or name>.localhost:<port>/…,
//   a redirect stays under /site/, /name/ or /ws/; a web-seed path is GET or HEAD (a preflight
//   OPTIONS) with a canonical site id and such segments, and names the file whose path follows
//   the torrent's name, or nothing;
// - a host name is lowercase ASCII wherever the input was; a site label holds no '.';
// - what a path names in the site is that path (or its folder's index.html, the SPA's
//   index.html, or 404.html); a folder without its slash moves to "<last segment>/";
// - a satisfiable range lies inside the file and is not empty; no header is the whole file.

import Bencode
import Hashing
import HTTPTypes
import Metainfo
import Names

#if canImport(Glibc)
import Glibc
#endif

private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fail(message()) }
}

private func fail(_ message: String) -> Never {
    let line = Array("fuzz-http: invariant broken: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    abort()
}

private let methods: [HTTPRequest.Method] = [.get, .head, .post, .put, .delete, .options, .connect, HTTPRequest.Method("PURGE")!]
private let port = 8080

/// The fixed site: a v1 torrent of a few files and folders.
private let site: Metainfo = {
    let paths = [["index.html"], ["404.html"], ["docs", "index.html"], ["docs", "a b.txt"], ["docs", "guide", "c.md"],
                 ["img", "logo.png"], ["caf\u{e9}.txt"], ["app"]]
    let files = paths.enumerated().map { i, p in
        BValue.dictionary(BDictionary([("length", .integer(Int64(10 + i))), ("path", .list(p.map { BValue.string($0) }))]))
    }
    let info = BDictionary([("files", .list(files)), ("name", .string("site")), ("piece length", .integer(16_384)),
                            ("pieces", .bytes([UInt8](repeating: 7, count: 20)))])
    let bytes = BValue.dictionary(BDictionary([("info", .dictionary(info))])).encoded()
    do { return try Metainfo(bytes: bytes) } catch { fail("the fixed site does not parse: \(error)") }
}()
private let index = SiteIndex(site)
private let siteAtRoot = SiteID.encode(Digests.sha256(Array("the site at root".utf8)))

private func checkSegments(_ segments: [String], _ context: @autoclosure () -> String) {
    check(!segments.isEmpty, "no segments: \(context())")
    for (i, s) in segments.enumerated() {
        check(s != "." && s != "..", "a dot segment \(s.debugDescription): \(context())")
        check(!s.contains("/") && !s.contains("\\") && !s.utf8.contains(0), "segment \(s.debugDescription): \(context())")
        check(!s.isEmpty || i == segments.count - 1, "an empty segment inside: \(context())")
    }
    let encoded = "/" + segments.map(SitePath.encode).joined(separator: "/")
    do {
        let again = try SitePath.segments(encoded[...])
        check(again == segments, "\(encoded.debugDescription) decodes to \(again), not \(segments): \(context())")
    } catch {
        // Encoding never lengthens a path past the limit for short inputs; long ones may.
        check(encoded.utf8.count > SitePath.maxLength, "encoded \(encoded.debugDescription) does not decode (\(error)): \(context())")
    }
}

private func checkMatch(_ segments: [String], query: String?, spa: Bool) {
    let path = segments.filter { !$0.isEmpty }.joined(separator: "/")
    let context = "match of \(segments)"
    switch index.match(segments, query: query, spa: spa) {
    case .file(let i, found: true):
        let name = site.files[i].pathString
        let ok = name == path || (segments.last == "" && name == (path.isEmpty ? "index.html" : path + "/index.html"))
            || (spa && name == "index.html")
        check(ok, "\(context) is \(name)")
    case .file(let i, found: false):
        check(site.files[i].pathString == "404.html", "\(context): not found, but sends \(site.files[i].pathString)")
    case .listing(let folder, let entries):
        check(folder == path && segments.last == "", "\(context) lists \(folder.debugDescription)")
        check(entries.map(\.name) == entries.map(\.name).sorted(), "\(context): a listing out of order")
    case .folderSlash(let location):
        let last = segments.last ?? ""
        check(!last.isEmpty && location.hasPrefix(SitePath.encode(last) + "/"), "\(context) moves to \(location.debugDescription)")
    case .notFound:
        break
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size >= 1, let data else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let flags = input[0]
    let text = String(decoding: input[1...], as: UTF8.self)
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let target = lines[0]
    let rangeHeader = lines.count > 1 ? lines[1] : nil
    let length: Int64 = lines.count > 2 ? (Int64(lines[2]).map { max(0, $0) } ?? Int64(lines[2].utf8.count) * 1_000) : 1_000
    let hosts = Array(lines.dropFirst(3).prefix(Int(flags >> 6)))
    let method = methods[Int(flags & 7)]
    let spa = flags & 32 != 0

    // The path alone.
    let raw = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
    if let segments = try? SitePath.segments(raw) {
        checkSegments(segments, "path \(raw.debugDescription)")
        checkMatch(segments, query: nil, spa: spa)
    }

    // Host.
    for h in hosts {
        let host = HostName(h)
        if !h.unicodeScalars.contains(where: { !$0.isASCII }) {
            check(!host.name.utf8.contains { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }, "host \(host.name.debugDescription)")
        }
        if let label = host.siteLabel { check(!label.contains(".") && !label.isEmpty, "site label \(label.debugDescription)") }
    }

    // Routing.
    let router = RequestRouter(siteAtRoot: flags & 8 != 0 ? siteAtRoot : nil, hasMetrics: flags & 16 != 0, port: port)
    let route = router.route(method: method, hosts: hosts, target: target)
    let context = "\(method) \(target.debugDescription) hosts \(hosts)"
    if target.utf8.count > SitePath.maxLength { check(route == .uriTooLong, "a long target routed: \(context)") }
    switch route {
    case .site(let t):
        check(method == .get || method == .head, "\(method) routed to a site: \(context)")
        check(RequestRouter.siteID(t.site.id) == t.site.id && t.site.id.utf8.count == 52, "site id \(t.site.id.debugDescription): \(context)")
        checkSegments(t.segments, context)
        checkMatch(t.segments, query: t.query, spa: spa)
    case .toSiteOrigin(let ref, let location):
        check(location.hasPrefix("http://\(ref.id).localhost:\(port)/"), "moved to \(location.debugDescription): \(context)")
    case .name(let t):
        check(method == .get || method == .head, "\(method) routed to a name: \(context)")
        check(SiteName.publicKey(fromName: t.name) != nil && t.name == t.name.lowercased(), "name \(t.name.debugDescription): \(context)")
        checkSegments(t.segments, context)
        checkMatch(t.segments, query: t.query, spa: spa)
    case .toNameOrigin(let name, let location):
        check(SiteName.publicKey(fromName: name) != nil && location.hasPrefix("http://\(name).localhost:\(port)/"),
              "moved to \(location.debugDescription): \(context)")
    case .redirect(let location):
        check(location.hasPrefix("/site/") || location.hasPrefix("/name/") || location.hasPrefix("/ws/"),
              "redirected to \(location.debugDescription): \(context)")
    case .webSeed(let t):
        check(method == .get || method == .head, "\(method) routed to a web seed: \(context)")
        check(RequestRouter.siteID(t.site.id) == t.site.id && t.site.id.utf8.count == 52, "site id \(t.site.id.debugDescription): \(context)")
        checkSegments(t.segments, context)
        if case .file(let i) = WebSeedFile.resolve(t.segments, in: site, index: index) {
            check(t.segments == [site.name] + site.files[i].path, "\(t.segments) is \(site.files[i].pathString): \(context)")
        }
    case .webSeedPreflight:
        check(method == .options, "\(method) is a preflight: \(context)")
    case .uriTooLong:
        check(target.utf8.count > SitePath.maxLength, "a short target refused as too long: \(context)")
    case .statusPage, .statusAPI, .addSite, .metrics, .notFound, .badRequest, .methodNotAllowed:
        break
    }

    // Range.
    check(ByteRange.parse(nil, length: length) == .whole, "no Range header is not the whole file")
    switch ByteRange.parse(rangeHeader, length: length) {
    case .partial(let r):
        check(r.lowerBound >= 0 && r.lowerBound < r.upperBound && r.upperBound <= length,
              "range \(r) of a \(length)-byte file from \(rangeHeader.debugDescription)")
    case .whole, .unsatisfiable:
        break
    }
    return 0
}
