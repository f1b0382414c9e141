import Hummingbird
import Metainfo
import NIOCore

/// Answers every HTTP request by doing what its `Route` says: the gateway's own pages, or a
/// file of a site, streamed from the site's content (which yields only verified bytes).
struct GatewayResponder: HTTPResponder {
    typealias Context = GatewayRequestContext

    let sites: GatewaySites
    /// The names this gateway follows (nil: it resolves none).
    var names: GatewayNames?
    let options: GatewayOptions
    /// The port browsers reach us on (for redirects to `<id>.localhost:PORT`).
    let port: @Sendable () -> Int
    /// Answers `/announce` (nil: this gateway is no tracker).
    var tracker: GatewayTracker?
    /// The event loop of the connection being answered (set per request by `respond`).
    private(set) var connectionLoop: (any EventLoop)? = nil

    func respond(to request: Request, context: Context) async throws -> Response {
        var answering = self
        answering.connectionLoop = context.eventLoop
        return try await answering.answer(request, context: context)
    }

    private func answer(_ request: Request, context: Context) async throws -> Response {
        switch router.route(method: request.method, hosts: hosts(request), target: request.head.path ?? "/") {
        case .statusPage:
            return html(.ok, StatusPage.html(sites: sites, names: names, port: port(), peer: options.peerEndpoint?(), trackers: options.trackers?() ?? [],
                                             listenHost: options.listenHost), request: request, cache: "no-store")
        case .statusAPI:
            return json(.ok, StatusPage.json(sites: sites, names: names, port: port(), peer: options.peerEndpoint?(), trackers: options.trackers?() ?? [],
                                             listenHost: options.listenHost, tracker: tracker), request: request)
        case .metrics:
            return text(.ok, options.metrics?() ?? "", type: "text/plain; version=0.0.4", request: request)
        case .addSite:
            return await addSite(request)
        case .announce(let query):
            return announce(query, request: request, context: context)
        case .site(let target):
            guard let site = resolve(target.site) else {
                var r = plain(.notFound, "unknown site '\(target.site.label)'")
                // A name's worker fetches each version from its site id's origin: it must be
                // able to read that this gateway does not hold the version (a retired one),
                // not see a network error and say it is offline.
                if options.verifyInBrowser { r.headers[.accessControlAllowOrigin] = "*" }
                return r
            }
            if options.verifyInBrowser, HostName(hosts(request).first ?? "").siteLabel != nil,
               let answer = await verifiedMode(site, target, request: request) {
                return answer
            }
            return await serve(site, target, request: request)
        case .toSiteOrigin(let ref, let location):
            guard resolve(ref) != nil else { return plain(.notFound, "unknown site '\(ref.label.prefix(80))'") }
            return redirect(location)
        case .name(let target):
            guard let names else { return plain(.notFound, Self.noNames) }
            // The site is picked once, here: the whole response comes from this version.
            let version: GatewayNames.Version
            switch await names.version(of: target.name, deadline: deadline()) {
            case .success(let v): version = v
            case .failure(.tooManyNames(let n)): return plain(.serviceUnavailable, GatewayNames.Unavailable.tooManyNames(n).description)
            case .failure(let e): return plain(.gatewayTimeout, e.description)
            }
            guard let site = sites.site(version.siteID) else { return plain(.badGateway, "\(target.name): its site \(version.siteID) is gone") }
            let inner = SiteTarget(site: SiteRef(id: site.id, label: target.name), segments: target.segments, query: target.query, immutable: false)
            if options.verifyInBrowser, HostName(hosts(request).first ?? "").siteLabel != nil,
               let answer = await verifiedName(version, site, inner, request: request) {
                return answer
            }
            return await serve(site, inner, request: request, name: target.name)
        case .toNameOrigin(_, let location):
            guard names != nil else { return plain(.notFound, Self.noNames) }
            return redirect(location)
        case .webSeed(let target):
            return await serveWebSeed(target, request: request)
        case .webSeedPreflight:
            return webSeedPreflight()
        case .redirect(let location):
            return redirect(location)
        case .notFound(let why):
            return plain(.notFound, why)
        case .badRequest(let why):
            return plain(.badRequest, why)
        case .methodNotAllowed(let allow):
            var r = plain(.methodNotAllowed, "method not allowed")
            r.headers[.allow] = allow
            return r
        case .uriTooLong:
            return plain(.uriTooLong, "URL too long")
        }
    }

    private var router: RequestRouter {
        let atRoot = options.singleSiteAtRoot ? sites.onlySiteID : nil
        return RequestRouter(siteAtRoot: atRoot, hasMetrics: options.metrics != nil, port: port())
    }

    /// Every Host the request names: its authority, and any Host field besides.
    private func hosts(_ request: Request) -> [String] {
        var hosts = request.head.authority.map { [$0] } ?? []
        for field in request.headers where field.name.canonicalName == "host" { hosts.append(field.value) }
        return hosts
    }

    static let noNames = "this gateway resolves no names (webseed gateway with a DHT node does)"

    /// Name-addressed responses may change with the name's next version: cached briefly,
    /// then revalidated (the ETag is the file's pieces root, so an unchanged file answers
    /// 304 across versions). Site-id addresses never change: immutable.
    static let nameCache = "max-age=10, must-revalidate"
    static let immutableCache = "public, max-age=31536000, immutable"

    func deadline() -> NIODeadline { .now() + .milliseconds(Int64(options.timeout * 1000)) }

    // MARK: the gateway's own API

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

    func resolve(_ ref: SiteRef) -> GatewaySites.Site? {
        if let site = sites.site(ref.id) { return site }
        // A site this gateway has not seen: fetch it from the peers it knows.
        guard options.fetchUnknownIDs, let v2 = SiteID.decode(ref.id) else { return nil }
        _ = try? sites.add(magnet: MagnetLink(v2InfoHash: v2))
        return sites.site(ref.id)
    }

    enum Readiness {
        case ready(Metainfo, SiteIndex)
        /// Not ready in time (504) or not fetchable (502): the answer to send.
        case answer(Response)
    }

    /// A site's torrent and index once it is ready, or the answer saying why not.
    func ready(_ site: GatewaySites.Site) async -> Readiness {
        do {
            let (metainfo, index) = try await site.ready(deadline: deadline())
            return .ready(metainfo, index)
        } catch SiteContentError.timedOut {
            return .answer(plain(.gatewayTimeout, "the site's metadata did not arrive from peers within \(Int(options.timeout)) s"))
        } catch {
            return .answer(plain(.badGateway, "the site cannot be fetched: \(error)"))
        }
    }

    /// `name`: the name the request addressed (the site is its current version).
    private func serve(_ site: GatewaySites.Site, _ target: SiteTarget, request: Request, name: String? = nil) async -> Response {
        let metainfo: Metainfo, index: SiteIndex
        switch await ready(site) {
        case .ready(let m, let i): (metainfo, index) = (m, i)
        case .answer(let response): return response
        }
        let cache = name != nil ? Self.nameCache : target.immutable ? Self.immutableCache : "no-cache"
        let match = index.match(target.segments, query: target.query, spa: options.spa)
        // A path this version lacks may be in the name's next one: look again (not waited for).
        if let name, let names {
            switch match {
            case .file(_, found: false), .notFound: names.miss(name)
            default: break
            }
        }
        switch match {
        case .file(let i, found: true):
            return await serveFile(site, metainfo.files[i], index, i, request: request, status: .ok, cache: cache)
        case .file(let i, found: false):
            return await serveFile(site, metainfo.files[i], index, i, request: request, status: .notFound, cache: "no-cache")
        case .listing(let folder, let entries):
            return html(.ok, StatusPage.listing(folder: folder, entries: entries), request: request, cache: cache)
        case .folderSlash(let location):
            return redirect(location)
        case .notFound:
            return plain(.notFound, "not found")
        }
    }

    private func serveFile(_ site: GatewaySites.Site, _ f: TorrentFile, _ index: SiteIndex, _ file: Int, request: Request,
                           status: HTTPResponse.Status, cache: String) async -> Response {
        var headers = HTTPFields()
        headers[.contentType] = index.contentTypes[file]
        headers[.xContentTypeOptions] = "nosniff"
        headers[.cacheControl] = cache
        // Verified mode: hash-addressed bytes are readable by other sites' workers, which
        // check them (this gateway as another one's fallback source).
        if options.verifyInBrowser, cache == Self.immutableCache { headers[.accessControlAllowOrigin] = "*" }
        let body = FileBody(path: f.pathString, length: f.length, etag: index.etags[file], headers: headers) { range, deadline in
            site.content.bytes(file: file, range: range, deadline: deadline)
        }
        return await send(body, of: site, request: request, status: status)
    }

    /// A file's bytes as the request asks for them (Range, If-Range, If-None-Match, HEAD).
    func send(_ body: FileBody, of site: GatewaySites.Site, request: Request, status: HTTPResponse.Status) async -> Response {
        let length = body.length
        let path = body.path
        var headers = body.headers
        headers[.acceptRanges] = "bytes"
        let etag = body.etag
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
        let total = Int(span.upperBound - span.lowerBound)
        headers[.contentLength] = String(total)
        guard total > 0 else { return Response(status: code, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer())) }

        // The first chunk arrives before the status line goes out: bytes that did not arrive
        // in time, or a file that no longer matches, get an error status instead of a body.
        // (HEAD asks too, so it answers what GET would.)
        var chunks = body.chunks(span, deadline()).makeAsyncIterator()
        let first: ByteBuffer
        do {
            guard let chunk = try await chunks.next(), chunk.readableBytes <= total else { throw WrongLength() }
            first = chunk
        } catch SiteContentError.timedOut {
            return plain(.gatewayTimeout, "\(path) did not arrive from peers within \(Int(options.timeout)) s")
        } catch {
            noteFailure(error, site)
            return plain(.badGateway, "\(path) cannot be served: \(error)")
        }
        if request.method == .head { return Response(status: code, headers: headers) }
        if first.readableBytes == total {
            return Response(status: code, headers: headers, body: ResponseBody(byteBuffer: first))
        }
        let rest = chunks
        let loop = connectionLoop
        let stream = ResponseBody(contentLength: total) { [self] writer in
            var chunks = rest
            var sent = first.readableBytes
            try await writer.write(first)
            // The writer hands each chunk to the connection's event loop and returns at once;
            // it holds back only once the socket is full. Reading a file is faster than a
            // client takes it, so without more, chunks queue on the loop without bound (10 MB
            // a connection was measured). Waiting until the loop has taken the chunk before
            // the last keeps two queued at most, and lets the content reuse their buffers.
            var taken: EventLoopFuture<Void>? = loop?.submit {}
            // A chunk that fails ends the response short: the browser sees a cut-off
            // transfer, never wrong bytes.
            do {
                while sent < total {
                    guard let chunk = try await chunks.next(), chunk.readableBytes <= total - sent else { throw WrongLength() }
                    try await writer.write(chunk)
                    sent += chunk.readableBytes
                    try await taken?.get()
                    taken = loop?.submit {}
                }
            } catch {
                noteFailure(error, site)
                throw error
            }
            try await writer.finish(nil)
        }
        return Response(status: code, headers: headers, body: stream)
    }

    /// A file found changed on disk is reported (the seeder's log names it once).
    private func noteFailure(_ error: any Error, _ site: GatewaySites.Site) {
        guard case .changedOnDisk(let path)? = error as? SiteContentError else { return }
        options.onFileChanged?(site.name ?? site.id, path)
    }
}

/// One file as a response sends it: its headers (type, caching), its strong ETag, and where
/// its bytes come from (verified chunks of a site's content, or zeros for a pad file).
struct FileBody {
    var path: String
    var length: Int64
    var etag: String
    var headers: HTTPFields
    var chunks: @Sendable (Range<Int64>, NIODeadline) -> VerifiedChunks
}

/// A content that yielded fewer or more bytes than asked for: nothing more is sent.
struct WrongLength: Error, CustomStringConvertible {
    var description: String { "the site's content did not yield the bytes asked for" }
}
