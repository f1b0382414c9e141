import Hashing
import Hummingbird
import Metainfo
import NIOCore

/// Verified mode (`GatewayOptions.verifyInBrowser`): on a site's own origin
/// (`<site-id>.localhost:PORT`) the browser checks every byte itself. A navigation gets the
/// bootstrap page, which installs the worker (`/.webseed/sw.js`, scope `/`) and reloads; from
/// then on the worker answers the page's requests, fetching the info dict, piece layers and
/// file bytes from the routes below and the plain site paths, and verifying them against the
/// site id in the hostname. Requests that are not navigations (the worker's own, curl's) are
/// served as the plain gateway serves them.
///
/// `/.webseed/webseeds` lists the torrent's web seeds (JSON), file sources after the gateways.
/// On a name's origin (`<name>.localhost:PORT`) the same, plus `/.webseed/item` (`verifiedName`).
/// `/.webseed/` is reserved on a site origin in verified mode: a site's own files under it
/// are not reachable there. A site's own service worker is refused (its script request
/// answers 403), so the verifying worker stays in charge of the origin.
extension GatewayResponder {
    /// The answer to `target` in verified mode, or nil: served as in plain mode.
    func verifiedMode(_ site: GatewaySites.Site, _ target: SiteTarget, request: Request) async -> Response? {
        if target.segments.first == BrowserScripts.folder {
            return await reserved(site, Array(target.segments.dropFirst()), request: request)
        }
        if request.headers[.serviceWorker] == "script" {
            return plain(.forbidden, "verified mode: this gateway's worker checks this site, so the site's own service worker is not installed")
        }
        if request.headers[.secFetchMode] == "navigate" {
            return html(.ok, BrowserScripts.bootstrap, request: request, cache: "no-store")
        }
        return nil
    }

    /// The answer to `target` on a name's origin (`<name>.localhost:PORT`) in verified mode,
    /// or nil: served as in plain mode. As on a site's origin, plus `/.webseed/item`: the
    /// name's signed item at `version`, which the worker checks against the key in the
    /// hostname before it uses the site the item names (fetched from that site's own origin).
    func verifiedName(_ version: GatewayNames.Version, _ site: GatewaySites.Site, _ target: SiteTarget, request: Request) async -> Response? {
        guard target.segments == [BrowserScripts.folder, "item"] else { return await verifiedMode(site, target, request: request) }
        guard let item = version.item else { return plain(.notFound, "this gateway does not hold the signed item of this name") }
        // The name's current item: it changes with the next version, so it is never kept.
        var r = bytes(item, request: request)
        r.headers[.cacheControl] = "no-store"
        return r
    }

    private func reserved(_ site: GatewaySites.Site, _ path: [String], request: Request) async -> Response {
        switch path {
        case ["sw.js"]:
            var r = text(.ok, BrowserScripts.worker(spa: options.spa, sources: options.verifySources), type: "text/javascript; charset=utf-8", cache: "no-cache", request: request)
            // The script lives under /.webseed/ but controls the whole origin.
            r.headers[.serviceWorkerAllowed] = "/"
            return r
        case ["info"]:
            guard let metainfo = await readyMetainfo(site) else { return plain(.gatewayTimeout, "the site's metadata did not arrive in time") }
            return bytes(metainfo.infoBytes, request: request)
        case ["webseeds"]:
            // BEP 19 web seeds: more places the worker may fetch file bytes from (checked there).
            guard let metainfo = await readyMetainfo(site) else { return plain(.gatewayTimeout, "the site's metadata did not arrive in time") }
            let seeds = metainfo.webSeeds.filter { s in
                let l = s.lowercased()
                return (l.hasPrefix("http://") || l.hasPrefix("https://")) && s.utf8.count <= 2048
            }
            return json(.ok, BrowserScripts.jsonArray(Array(seeds.prefix(16))), request: request)
        case let p where p.count == 2 && p[0] == "layer":
            guard let root = SHA256Digest(hex: p[1]) else { return plain(.notFound, "not a pieces root") }
            guard let metainfo = await readyMetainfo(site) else { return plain(.gatewayTimeout, "the site's metadata did not arrive in time") }
            guard let layer = metainfo.pieceLayers[root] else { return plain(.notFound, "no piece layer for \(p[1])") }
            return bytes(layer.flatMap(\.bytes), request: request)
        default:
            return plain(.notFound, "not found")
        }
    }

    private func readyMetainfo(_ site: GatewaySites.Site) async -> Metainfo? {
        try? await site.ready(deadline: .now() + .milliseconds(Int64(options.timeout * 1000))).0
    }

    /// Hash-addressed data: immutable, and readable by other origins (another gateway's
    /// worker may use this one as a source; the bytes are checked there).
    private func bytes(_ data: [UInt8], request: Request) -> Response {
        var h = HTTPFields()
        h[.contentType] = "application/octet-stream"
        h[.xContentTypeOptions] = "nosniff"
        h[.cacheControl] = Self.immutableCache
        h[.accessControlAllowOrigin] = "*"
        h[.contentLength] = String(data.count)
        return Response(status: .ok, headers: h, body: request.method == .head ? ResponseBody() : ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension HTTPFields.Element.Name {
    static let serviceWorker = Self("Service-Worker")!
    static let serviceWorkerAllowed = Self("Service-Worker-Allowed")!
    static let secFetchMode = Self("Sec-Fetch-Mode")!
}
