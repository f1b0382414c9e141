import Hummingbird
import Metainfo

/// The gateway as a BEP 19 web seed: each site it holds has a base URL,
/// `http://HOST:PORT/ws/<site-id>/`, under which a BitTorrent client finds the files the
/// way it finds them on any web server, `<base><torrent name>/<path>` for a multi-file
/// torrent and `<base><torrent name>` for a single file, with a Range per request.
///
/// The bytes are the site's verified bytes (as for a browser), the BEP 47 pad files of a
/// hybrid's v1 side are zeros (clients without BEP 47, aria2 among them, ask for them), and
/// every answer is for programs, not for navigation: `application/octet-stream` in a
/// sandbox, so a site's HTML never runs on the origin it is served from here (the gateway's
/// own, or a domain's), with `Access-Control-Allow-Origin: *` so pages of any origin can
/// fetch the hash-addressed data.
struct WebSeedTarget: Equatable {
    static let prefix = "/ws/"
    var site: SiteRef
    /// Decoded path segments after the site id (a trailing "" for a path ending in "/").
    var segments: [String]
}

/// A site's web-seed base URL, as `seed` prints it and `/api/status` gives it.
public enum WebSeedURL {
    /// `listenHost` as the gateway listens on it: the any-address is given as its loopback
    /// form (the one address known to reach it), an IPv6 address in brackets.
    public static func base(listenHost: String, port: Int, siteID: String) -> String {
        "http://\(host(listenHost)):\(port)\(WebSeedTarget.prefix)\(siteID)/"
    }

    static func host(_ listen: String) -> String {
        switch listen {
        case "", "0.0.0.0": "127.0.0.1"
        case "::", "[::]": "[::1]"
        case _ where listen.contains(":") && !listen.hasPrefix("["): "[\(listen)]"
        default: listen
        }
    }
}

extension RequestRouter {
    /// `/ws/<site-id>/…`; nil when what follows `/ws/` is not a site id.
    func webSeed(path: Substring, method: HTTPRequest.Method) -> Route? {
        let rest = path.dropFirst(WebSeedTarget.prefix.count)
        let label = rest.prefix { $0 != "/" }
        guard let id = Self.siteID(String(label)) else { return nil }
        let inner = rest.dropFirst(label.count)
        switch method {
        case .options: return .webSeedPreflight
        case .get, .head: break
        default: return .methodNotAllowed(allow: "GET, HEAD, OPTIONS")
        }
        guard !inner.isEmpty else { return .redirect("\(WebSeedTarget.prefix)\(label)/") }
        do {
            let segments = try SitePath.segments(inner)
            return .webSeed(WebSeedTarget(site: SiteRef(id: id, label: String(label)), segments: segments))
        } catch {
            return .badRequest("bad path: \(error.description)")
        }
    }
}

/// What a web-seed path names in a torrent.
enum WebSeedFile: Equatable {
    /// A file of the site (index into the metainfo's files).
    case file(Int)
    /// A BEP 47 pad file of the v1 side: this many zeros.
    case pad(Int64)
    case notFound

    /// `segments`: the path after the base, which starts with the torrent's name (for a
    /// single-file torrent, it is the name). No listings, no index pages, no site 404 page:
    /// a web seed's client asks for files only.
    static func resolve(_ segments: [String], in m: Metainfo, index: SiteIndex) -> WebSeedFile {
        guard segments.first == m.name, segments.last != "" else { return .notFound }
        if m.isSingleFile {
            return segments.count == 1 ? index.file(m.files[0].pathString).map(WebSeedFile.file) ?? .notFound : .notFound
        }
        let inner = Array(segments.dropFirst())
        guard !inner.isEmpty else { return .notFound }
        if let i = index.file(inner.joined(separator: "/")) { return .file(i) }
        // Pads are named `.pad/<length>` (as the parser names every pad, and as webseed and
        // libtorrent write them).
        if inner.count == 2, inner[0] == ".pad", let n = Int64(inner[1]), String(n) == inner[1], index.padLengths.contains(n) {
            return .pad(n)
        }
        return .notFound
    }
}
