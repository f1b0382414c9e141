import Hashing
import Hummingbird
import Metainfo
import NIOCore
import NIOPosix
import Swarm

/// Answers every HTTP request: resolves the site (subdomain, `/site/<id>/` path, or the
/// single site at the root), then the file, and streams only verified bytes.
struct GatewayResponder: HTTPResponder {
    typealias Context = BasicRequestContext

    let sites: GatewaySites
    let options: GatewayOptions
    /// The port browsers reach us on (for redirects to `<id>.localhost:PORT`).
    let port: @Sendable () -> Int
    let loop: any EventLoop
    let threadPool: NIOThreadPool

    /// Reads of at most this much happen inline; larger bodies stream in chunks from the pool.
    static let chunk = 256 << 10

    func respond(to request: Request, context: Context) async throws -> Response {
        let target = request.head.path ?? "/"
        guard target.utf8.count <= SitePath.maxLength else { return plain(.uriTooLong, "URL too long") }
        let (rawPath, query) = split(target)
        // RFC 9112 §3.2: a request with more than one Host is rejected (which site would it be?).
        if request.headers.filter({ $0.name.canonicalName == "host" }).count > (request.head.authority == nil ? 1 : 0) {
            return plain(.badRequest, "more than one Host header")
        }
        let host = hostName(request)

        // <site-id>.localhost: each site its own origin.
        if let label = host.siteLabel {
            guard let site = resolve(label) else { return plain(.notFound, "unknown site '\(label)'") }
            return try await serve(site, pathAfter: rawPath, query: query, request: request, immutable: true)
        }
        if rawPath.hasPrefix("/site/") {
            let rest = rawPath.dropFirst(6)
            let idPart = rest.prefix { $0 != "/" }
            guard let site = resolve(String(idPart)) else { return plain(.notFound, "unknown site '\(idPart.prefix(80))'") }
            let inner = rest.dropFirst(idPart.count)
            if !inner.isEmpty {
                do { _ = try SitePath.segments(inner) } catch { return plain(.badRequest, "bad path: \(error.description)") }
            }
            if host.isLoopbackName {
                // Loopback: move to the site's own origin, so sites never share one.
                let path = inner.isEmpty ? "/" : String(inner)
                return redirect("http://\(site.id).localhost:\(port())\(path)\(query.map { "?" + $0 } ?? "")")
            }
            guard !inner.isEmpty else { return redirect("/site/\(idPart)/\(query.map { "?" + $0 } ?? "")") }
            return try await serve(site, pathAfter: inner, query: query, request: request, immutable: true)
        }
        if host.name != "localhost", options.singleSiteAtRoot, sites.count == 1, let site = sites.all.first {
            return try await serve(site, pathAfter: rawPath, query: query, request: request, immutable: false)
        }
        return try await gatewayOrigin(rawPath, request: request)
    }

    // MARK: the gateway's own pages

    private func gatewayOrigin(_ path: Substring, request: Request) async throws -> Response {
        switch (request.method, path) {
        case (.get, "/"), (.head, "/"):
            return html(.ok, StatusPage.html(sites: sites, port: port(), peer: options.peerEndpoint?()), request: request, cache: "no-store")
        case (.get, "/api/status"), (.head, "/api/status"):
            return json(.ok, StatusPage.json(sites: sites, port: port(), peer: options.peerEndpoint?()), request: request)
        case (.post, "/api/sites"):
            return await addSite(request)
        case (.get, _), (.head, _):
            return plain(.notFound, "not found")
        default:
            var r = plain(.methodNotAllowed, "method not allowed")
            r.headers[.allow] = path == "/api/sites" ? "POST" : "GET, HEAD"
            return r
        }
    }

    private func addSite(_ request: Request) async -> Response {
        // JSON only: a page of another origin cannot send it without a CORS preflight, which
        // this gateway never grants.
        guard request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true else {
            return json(.unsupportedMediaType, #"{"error":"send {\"magnet\":\"magnet:?…\"} as application/json"}"#, request: request)
        }
        var request = request
        guard let body = try? await request.collectBody(upTo: 16 << 10),
              let magnetText = StatusPage.magnetField(String(buffer: body)) else {
            return json(.badRequest, #"{"error":"the body must be {\"magnet\":\"magnet:?…\"}"}"#, request: request)
        }
        do {
            let magnet = try MagnetLink(parsing: magnetText)
            let id = try sites.add(magnet: magnet)
            return json(.created, #"{"site_id":"\#(id)","url":"http://\#(id).localhost:\#(port())/"}"#, request: request)
        } catch {
            return json(.badRequest, "{\"error\":\(StatusPage.quote(String(describing: error)))}", request: request)
        }
    }

    // MARK: sites

    private func resolve(_ text: String) -> GatewaySites.Site? {
        let id: String
        guard text == text.lowercased() else { return nil }
        if text.utf8.count == 64, let digest = SHA256Digest(hex: text) {
            id = SiteID.encode(digest)
        } else if text.utf8.count == 52, SiteID.decode(text) != nil {
            id = text
        } else {
            return nil
        }
        if let site = sites.site(id) { return site }
        // A site this gateway has not seen: fetch it from the peers it knows.
        guard options.fetchUnknownIDs, let v2 = SiteID.decode(id) else { return nil }
        _ = try? sites.add(magnet: MagnetLink(v2InfoHash: v2))
        return sites.site(id)
    }

    private func serve(_ site: GatewaySites.Site, pathAfter raw: Substring, query: String?, request: Request, immutable: Bool) async throws -> Response {
        guard request.method == .get || request.method == .head else {
            var r = plain(.methodNotAllowed, "method not allowed")
            r.headers[.allow] = "GET, HEAD"
            return r
        }
        let segments: [String]
        do { segments = try SitePath.segments(raw.isEmpty ? "/" : raw) } catch {
            return plain(.badRequest, "bad path: \(error.description)")
        }
        let (torrent, index): (SeedTorrent, SiteIndex)
        do {
            if let now = site.readyNow {
                (torrent, index) = now  // no hop to another thread for a site already readable
            } else {
                (torrent, index) = try await withDeadline(options.timeout) { site.ready(on: loop) }
            }
        } catch is DeadlineExceeded {
            return plain(.gatewayTimeout, "the site's metadata did not arrive from peers within \(Int(options.timeout)) s")
        } catch {
            return plain(.badGateway, "the site cannot be fetched: \(error)")
        }
        let isFolderRequest = segments.last == ""
        let path = segments.filter { !$0.isEmpty }.joined(separator: "/")
        let cache = immutable ? "public, max-age=31536000, immutable" : "no-cache"
        if isFolderRequest {
            let folder = path
            if let i = index.file(folder.isEmpty ? "index.html" : folder + "/index.html") {
                return try await serveFile(site, torrent, index, i, request: request, status: .ok, cache: cache)
            }
            if let entries = index.folder(folder) {
                return html(.ok, StatusPage.listing(folder: folder, entries: entries), request: request, cache: cache)
            }
        } else if let i = index.file(path) {
            return try await serveFile(site, torrent, index, i, request: request, status: .ok, cache: cache)
        } else if index.folder(path) != nil {
            let last = segments.last.map(SitePath.encode) ?? ""
            return redirect("\(last)/\(query.map { "?" + $0 } ?? "")")
        }
        // Not found: a single-page app's index, the site's own 404 page, or ours.
        if options.spa, !(segments.last ?? "").contains("."), let i = index.file("index.html") {
            return try await serveFile(site, torrent, index, i, request: request, status: .ok, cache: cache)
        }
        if let i = index.file("404.html") {
            return try await serveFile(site, torrent, index, i, request: request, status: .notFound, cache: "no-cache")
        }
        return plain(.notFound, "not found")
    }

    private func serveFile(_ site: GatewaySites.Site, _ torrent: SeedTorrent, _ index: SiteIndex, _ file: Int, request: Request,
                           status: HTTPResponse.Status, cache: String) async throws -> Response {
        let f = torrent.metainfo.files[file]
        let length = f.length
        var headers = HTTPFields()
        headers[.contentType] = index.contentTypes[file]
        headers[.xContentTypeOptions] = "nosniff"
        headers[.cacheControl] = cache
        headers[.acceptRanges] = "bytes"
        let etag = index.etags[file]
        headers[.eTag] = etag
        if status == .ok, let inm = request.headers[.ifNoneMatch],
           inm.split(separator: ",").contains(where: { let t = $0.trimmingSpaces; return t == "*" || t == etag || t == "W/" + etag }) {
            headers[.contentType] = nil
            return Response(status: .notModified, headers: headers)
        }
        var range = status == .ok ? ByteRange.parse(request.headers[.range], length: length) : .whole
        if let ifRange = request.headers[.ifRange], ifRange.trimmingSpaces != etag { range = .whole }
        let span: Range<Int64>
        var code = status
        switch range {
        case .whole: span = 0..<length
        case .partial(let r):
            span = r
            code = .partialContent
            headers[.contentRange] = "bytes \(r.lowerBound)-\(r.upperBound - 1)/\(length)"
        case .unsatisfiable:
            headers[.contentRange] = "bytes */\(length)"
            headers[.contentType] = "text/plain; charset=utf-8"
            return Response(status: .rangeNotSatisfiable, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: "range not satisfiable\n")))
        }
        let total = span.upperBound - span.lowerBound
        headers[.contentLength] = String(total)
        // A site still being fetched: ask for these bytes first and wait for them to verify.
        if let fetch = site.fetch, !span.isEmpty, !torrent.isVerified(file: file, range: span) {
            do {
                try await withDeadline(options.timeout) {
                    fetch.want(file: file, range: span, deadline: Double(NIODeadline.now().uptimeNanoseconds) / 1e9)
                }
            } catch is DeadlineExceeded {
                return plain(.gatewayTimeout, "\(f.pathString) did not arrive from peers within \(Int(options.timeout)) s")
            } catch {
                return plain(.badGateway, "\(f.pathString) cannot be fetched: \(error)")
            }
        }
        // A file that is no longer exactly the one that verified is checked in full before the
        // status line goes out, so a change found anywhere in the range is an error status,
        // not a cut-off body. (Unchanged files stream at once; each chunk is checked anyway.)
        if total > Int64(Self.chunk), !torrent.isUnchanged(file: file) {
            do {
                var at = span.lowerBound
                while at < span.upperBound {
                    let n = Int(min(Int64(Self.chunk), span.upperBound - at))
                    let from = at
                    _ = try await threadPool.runIfActive { try torrent.readVerified(file: file, offset: from, length: n) }
                    at += Int64(n)
                }
            } catch {
                noteFailure(error, torrent)
                return plain(.badGateway, "\(f.pathString) cannot be served: \(error)")
            }
        }
        if request.method == .head { return Response(status: code, headers: headers) }
        // The first chunk is read and verified before the status line goes out: a file that
        // no longer matches gets an error status instead of a body.
        let firstLength = Int(min(Int64(Self.chunk), total))
        let first: ByteBuffer
        do {
            first = try await read(torrent, file, span.lowerBound, firstLength)
        } catch {
            noteFailure(error, torrent)
            return plain(.badGateway, "\(f.pathString) cannot be served: \(error)")
        }
        if Int64(firstLength) == total {
            return Response(status: code, headers: headers, body: ResponseBody(byteBuffer: first))
        }
        let pool = threadPool
        let body = ResponseBody(contentLength: Int(total)) { writer in
            try await writer.write(first)
            var at = span.lowerBound + Int64(firstLength)
            while at < span.upperBound {
                let n = Int(min(Int64(Self.chunk), span.upperBound - at))
                let from = at
                // A chunk that fails verification ends the response short: the browser sees a
                // cut-off transfer, never wrong bytes.
                let bytes: ByteBuffer
                do {
                    bytes = try await pool.runIfActive { try torrent.readVerified(file: file, offset: from, length: n) }
                } catch {
                    noteFailure(error, torrent)
                    throw error
                }
                try await writer.write(bytes)
                at += Int64(n)
            }
            try await writer.finish(nil)
        }
        return Response(status: code, headers: headers, body: body)
    }

    private func read(_ torrent: SeedTorrent, _ file: Int, _ offset: Int64, _ length: Int) async throws -> ByteBuffer {
        if length <= 64 << 10 { return try torrent.readVerified(file: file, offset: offset, length: length) }
        return try await threadPool.runIfActive { try torrent.readVerified(file: file, offset: offset, length: length) }
    }

    /// A file found changed on disk is reported once (the seeder's log names it).
    private func noteFailure(_ error: any Error, _ torrent: SeedTorrent) {
        guard case .changedOnDisk(let path)? = error as? SeedTorrent.ReadError else { return }
        options.onFileChanged?(torrent.metainfo.name, path)
    }

    // MARK: helpers

    private func split(_ target: String) -> (Substring, String?) {
        guard let q = target.firstIndex(of: "?") else { return (target[...], nil) }
        return (target[..<q], String(target[target.index(after: q)...]))
    }

    private func hostName(_ request: Request) -> HostName {
        HostName(request.head.authority ?? "")
    }

    private func redirect(_ location: String) -> Response {
        var h = HTTPFields()
        h[.location] = location
        h[.contentType] = "text/plain; charset=utf-8"
        h[.xContentTypeOptions] = "nosniff"
        return Response(status: .movedPermanently, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: "moved to \(location)\n")))
    }

    func plain(_ status: HTTPResponse.Status, _ text: String) -> Response {
        var h = HTTPFields()
        h[.contentType] = "text/plain; charset=utf-8"
        h[.xContentTypeOptions] = "nosniff"
        h[.cacheControl] = "no-store"
        return Response(status: status, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: text + "\n")))
    }

    private func html(_ status: HTTPResponse.Status, _ text: String, request: Request, cache: String) -> Response {
        var h = HTTPFields()
        h[.contentType] = "text/html; charset=utf-8"
        h[.xContentTypeOptions] = "nosniff"
        h[.cacheControl] = cache
        let buffer = ByteBuffer(string: text)
        h[.contentLength] = String(buffer.readableBytes)
        return Response(status: status, headers: h, body: request.method == .head ? ResponseBody() : ResponseBody(byteBuffer: buffer))
    }

    private func json(_ status: HTTPResponse.Status, _ text: String, request: Request) -> Response {
        var h = HTTPFields()
        h[.contentType] = "application/json; charset=utf-8"
        h[.xContentTypeOptions] = "nosniff"
        h[.cacheControl] = "no-store"
        let buffer = ByteBuffer(string: text)
        h[.contentLength] = String(buffer.readableBytes)
        return Response(status: status, headers: h, body: request.method == .head ? ResponseBody() : ResponseBody(byteBuffer: buffer))
    }
}

/// The Host header, split into name and port.
struct HostName {
    let name: String

    init(_ authority: String) {
        var a = authority.lowercased()
        if a.hasPrefix("[") {
            a = String(a.prefix { $0 != "]" }) + "]"
        } else if let colon = a.lastIndex(of: ":") {
            a = String(a[..<colon])
        }
        if a.hasSuffix(".") { a.removeLast() }
        name = a
    }

    /// `<label>.localhost` → label.
    var siteLabel: String? {
        guard name.hasSuffix(".localhost") else { return nil }
        let label = name.dropLast(".localhost".count)
        return label.isEmpty || label.contains(".") ? nil : String(label)
    }

    var isLoopbackName: Bool {
        name == "localhost" || name.hasSuffix(".localhost") || name == "[::1]" || name.hasPrefix("127.")
    }
}

struct DeadlineExceeded: Error {}

/// Waits for a future, giving up after `seconds`.
func withDeadline<T: Sendable>(_ seconds: Double, _ make: () -> EventLoopFuture<T>) async throws -> T {
    let future = make()
    let timeout = future.eventLoop.scheduleTask(in: .milliseconds(Int64(seconds * 1000))) { () }
    let result: T = try await withTaskCancellationHandler {
        try await future.or(timeout.futureResult.flatMapThrowing { throw DeadlineExceeded() }).get()
    } onCancel: {}
    timeout.cancel()
    return result
}

extension EventLoopFuture {
    /// The first of two futures to complete.
    fileprivate func or(_ other: EventLoopFuture<Value>) -> EventLoopFuture<Value> where Value: Sendable {
        let promise = eventLoop.makePromise(of: Value.self)
        let done = PortBox()
        let complete: @Sendable (Result<Value, any Error>) -> Void = { result in
            guard done.claim() else { return }
            promise.completeWith(result)
        }
        self.whenComplete(complete)
        other.hop(to: eventLoop).whenComplete(complete)
        return promise.futureResult
    }
}
