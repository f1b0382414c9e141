import Hashing
import Hummingbird
import Metainfo
import Names

/// What a request asks for, decided from its method, Host and target alone (no sites, no
/// I/O), so every routing rule is a unit test.
enum Route: Equatable {
    /// The gateway's own origin.
    case statusPage
    case statusAPI
    case addSite
    case metrics
    /// A path inside a site. The site may still be unknown: the responder looks it up.
    case site(SiteTarget)
    /// Moves a loopback `/site/<id>/…` to the site's own origin, once the site is known.
    case toSiteOrigin(SiteRef, location: String)
    /// A path inside the current version of a name's site.
    case name(NameTarget)
    /// Moves a loopback `/name/<name>/…` to the name's own origin.
    case toNameOrigin(name: String, location: String)
    /// A file of a site as a BEP 19 web seed asks for it: `/ws/<site-id>/<name>/<path>`.
    case webSeed(WebSeedTarget)
    /// A browser's CORS preflight for a web-seed URL.
    case webSeedPreflight
    case redirect(String)
    case notFound(String)
    case badRequest(String)
    case methodNotAllowed(allow: String)
    case uriTooLong
}

/// A site as named in a URL: its id, and the text that named it (for messages).
struct SiteRef: Equatable {
    var id: String
    var label: String
}

struct SiteTarget: Equatable {
    var site: SiteRef
    /// Decoded path segments; a trailing "" means the path ended in "/".
    var segments: [String]
    var query: String?
    /// Served at an address that names the site's id (so its bytes never change there).
    var immutable: Bool
}

/// A path under a name (`k-…`): which site that is, is decided when the request starts.
struct NameTarget: Equatable {
    /// The name in its canonical form (lowercase).
    var name: String
    var segments: [String]
    var query: String?
}

struct RequestRouter: Sendable {
    /// The site served at `/` for Hosts other than `localhost` (a `seed` of one site).
    var siteAtRoot: String?
    var hasMetrics = false
    /// The port browsers reach the gateway on (for redirects to `<id>.localhost:PORT`).
    var port: Int

    /// `hosts`: every Host the request carries (its authority and any Host header).
    func route(method: HTTPRequest.Method, hosts: [String], target: String) -> Route {
        guard target.utf8.count <= SitePath.maxLength else { return .uriTooLong }
        // RFC 9112 §3.2: a request with more than one Host is rejected (which site would it be?).
        guard hosts.count <= 1 else { return .badRequest("more than one Host header") }
        let host = HostName(hosts.first ?? "")
        let (path, query) = Self.split(target)

        // <site-id>.localhost and <name>.localhost: each site and each name its own origin.
        if let label = host.siteLabel {
            if let name = Self.name(label) { return self.name(name, path: path, query: query, method: method) }
            guard let id = Self.siteID(label) else { return .notFound("unknown site '\(label)'") }
            return site(SiteRef(id: id, label: label), path: path, query: query, method: method, immutable: true)
        }
        // A site's web-seed base, on any other host (BitTorrent clients follow no redirect to
        // `<id>.localhost`); anything under /ws/ that names no site id is left to the rules below.
        if path.hasPrefix(WebSeedTarget.prefix), let route = webSeed(path: path, method: method) {
            return route
        }
        if path.hasPrefix("/name/") {
            let rest = path.dropFirst(6)
            let label = rest.prefix { $0 != "/" }
            guard let name = Self.name(String(label)) else { return .notFound("unknown name '\(label.prefix(80))'") }
            let inner = rest.dropFirst(label.count)
            if !inner.isEmpty {
                do { _ = try SitePath.segments(inner) } catch { return .badRequest("bad path: \(error.description)") }
            }
            if host.isLoopbackName {
                let location = "http://\(name).localhost:\(port)\(inner.isEmpty ? "/" : inner)\(Self.suffix(query))"
                return .toNameOrigin(name: name, location: location)
            }
            guard !inner.isEmpty else { return .redirect("/name/\(label)/\(Self.suffix(query))") }
            return self.name(name, path: inner, query: query, method: method)
        }
        if path.hasPrefix("/site/") {
            let rest = path.dropFirst(6)
            let label = rest.prefix { $0 != "/" }
            guard let id = Self.siteID(String(label)) else { return .notFound("unknown site '\(label.prefix(80))'") }
            let ref = SiteRef(id: id, label: String(label))
            let inner = rest.dropFirst(label.count)
            if !inner.isEmpty {
                do { _ = try SitePath.segments(inner) } catch { return .badRequest("bad path: \(error.description)") }
            }
            if host.isLoopbackName {
                // Loopback: move to the site's own origin, so sites never share one.
                let location = "http://\(id).localhost:\(port)\(inner.isEmpty ? "/" : inner)\(Self.suffix(query))"
                return .toSiteOrigin(ref, location: location)
            }
            guard !inner.isEmpty else { return .redirect("/site/\(label)/\(Self.suffix(query))") }
            return site(ref, path: inner, query: query, method: method, immutable: true)
        }
        if host.name != "localhost", let id = siteAtRoot {
            return site(SiteRef(id: id, label: id), path: path, query: query, method: method, immutable: false)
        }
        return gatewayOrigin(method: method, path: path)
    }

    private func gatewayOrigin(method: HTTPRequest.Method, path: Substring) -> Route {
        switch (method, path) {
        case (.get, "/"), (.head, "/"): return .statusPage
        case (.get, "/api/status"), (.head, "/api/status"): return .statusAPI
        case (.get, "/metrics") where hasMetrics, (.head, "/metrics") where hasMetrics: return .metrics
        case (.post, "/api/sites"): return .addSite
        case (.get, _), (.head, _): return .notFound("not found")
        default: return .methodNotAllowed(allow: path == "/api/sites" ? "POST" : "GET, HEAD")
        }
    }

    private func site(_ ref: SiteRef, path: Substring, query: String?, method: HTTPRequest.Method, immutable: Bool) -> Route {
        guard method == .get || method == .head else { return .methodNotAllowed(allow: "GET, HEAD") }
        do {
            let segments = try SitePath.segments(path.isEmpty ? "/" : path)
            return .site(SiteTarget(site: ref, segments: segments, query: query, immutable: immutable))
        } catch {
            return .badRequest("bad path: \(error.description)")
        }
    }

    private func name(_ name: String, path: Substring, query: String?, method: HTTPRequest.Method) -> Route {
        guard method == .get || method == .head else { return .methodNotAllowed(allow: "GET, HEAD") }
        do {
            let segments = try SitePath.segments(path.isEmpty ? "/" : path)
            return .name(NameTarget(name: name, segments: segments, query: query))
        } catch {
            return .badRequest("bad path: \(error.description)")
        }
    }

    /// A name as written in a host label or path: `k-` and a public key in base32 (any
    /// case, as DNS names are), in its canonical lowercase form; nil for anything else.
    static func name(_ text: String) -> String? {
        SiteName.publicKey(fromName: text).map(SiteName.name(for:))
    }

    /// A site id as written in a host label or path: 52 base32 characters or 64 hex digits,
    /// lowercase (the canonical form; anything else is not a site).
    static func siteID(_ text: String) -> String? {
        guard text == text.lowercased() else { return nil }
        if text.utf8.count == 64, let digest = SHA256Digest(hex: text) { return SiteID.encode(digest) }
        if text.utf8.count == 52, SiteID.decode(text) != nil { return text }
        return nil
    }

    static func split(_ target: String) -> (Substring, String?) {
        guard let q = target.firstIndex(of: "?") else { return (target[...], nil) }
        return (target[..<q], String(target[target.index(after: q)...]))
    }

    static func suffix(_ query: String?) -> String { query.map { "?" + $0 } ?? "" }
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
