import Locking
import Hummingbird
import Metainfo
import NIOCore

/// Answers a web seed's requests (`WebSeedRoute.swift` says what they name).
extension GatewayResponder {
    /// Headers of every web-seed answer: readable from any origin, never a page.
    static let webSeedHeaders: HTTPFields = [
        .accessControlAllowOrigin: "*",
        .accessControlExposeHeaders: "Content-Range, Content-Length, Accept-Ranges, ETag",
        .contentSecurityPolicy: "sandbox",
    ]

    func webSeedPreflight() -> Response {
        var h = Self.webSeedHeaders
        h[.accessControlAllowMethods] = "GET, HEAD"
        h[.accessControlAllowHeaders] = "Range, If-None-Match, If-Range"
        h[.accessControlMaxAge] = "86400"
        h[.contentLength] = "0"
        return Response(status: .noContent, headers: h)
    }

    func serveWebSeed(_ target: WebSeedTarget, request: Request) async -> Response {
        var response = await webSeedResponse(target, request: request)
        for field in Self.webSeedHeaders { response.headers[field.name] = field.value }
        return response
    }

    private func webSeedResponse(_ target: WebSeedTarget, request: Request) async -> Response {
        guard let site = resolve(target.site) else { return plain(.notFound, "unknown site '\(target.site.label)'") }
        let metainfo: Metainfo, index: SiteIndex
        switch await ready(site) {
        case .ready(let m, let i): (metainfo, index) = (m, i)
        case .answer(let response): return response
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/octet-stream"
        headers[.xContentTypeOptions] = "nosniff"
        headers[.cacheControl] = Self.immutableCache
        switch WebSeedFile.resolve(target.segments, in: metainfo, index: index) {
        case .file(let i):
            let f = metainfo.files[i]
            let body = FileBody(path: f.pathString, length: f.length, etag: index.etags[i], headers: headers) { range, deadline in
                site.content.bytes(file: i, range: range, deadline: deadline)
            }
            return await send(body, of: site, request: request, status: .ok)
        case .pad(let length):
            let body = FileBody(path: ".pad/\(length)", length: length, etag: "\"pad-\(length)\"", headers: headers) { range, _ in
                Self.zeros(range)
            }
            return await send(body, of: site, request: request, status: .ok)
        case .notFound:
            return plain(.notFound, "not found (a web seed serves <torrent name>/<path> of each site)")
        }
    }

    /// The bytes of a pad file, in chunks of at most 64 KiB.
    static func zeros(_ range: Range<Int64>) -> VerifiedChunks {
        let chunk: Int64 = 64 << 10
        let length = range.upperBound - range.lowerBound
        guard length > chunk else { return VerifiedChunks(ready: .success(ByteBuffer(repeating: 0, count: Int(length)))) }
        let left = Locked(length)
        return VerifiedChunks {
            let n = left.withLock { left in
                let n = min(left, chunk)
                left -= n
                return n
            }
            return n > 0 ? ByteBuffer(repeating: 0, count: Int(n)) : nil
        }
    }
}
