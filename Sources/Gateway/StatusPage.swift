/// The gateway's own pages: the status page (HTML and JSON) and folder listings.
enum StatusPage {
    static func html(sites: GatewaySites, names: GatewayNames? = nil, port: Int, peer: PeerEndpoint?, trackers: [TrackerState] = [],
                     listenHost: String = "127.0.0.1") -> String {
        let now = ProcessInfoUptime.now
        var rows = ""
        for site in sites.all {
            let s = summary(site, port: port, now: now)
            let share = s.total > 0 ? Double(s.verified) / Double(s.total) : 0
            rows += """
            <tr><td><strong>\(escape(s.name ?? "(fetching metadata)"))</strong><br><code>\(site.id)</code></td>
            <td>\(bytes(s.total))</td>
            <td><div class="bar"><span style="width:\(Int(share * 100))%"></span></div>\(Int((share * 100).rounded(.down)))%</td>
            <td>\(s.peers)</td><td>\(bytes(Int64(s.up)))/s</td><td>\(bytes(Int64(s.down)))/s</td>
            <td><a class="open" href="\(escape(s.url))">Open site</a><br><a href="/site/\(site.id)/"><code>/site/\(site.id.prefix(10))…/</code></a>
            <br><small>web seed <code>\(escape(WebSeedURL.base(listenHost: listenHost, port: port, siteID: site.id)))</code></small></td></tr>

            """
        }
        if rows.isEmpty { rows = "<tr><td colspan=7 class=empty>No sites yet.</td></tr>" }
        return """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
        <meta http-equiv="refresh" content="5"><title>webseed gateway</title>
        <style>
        body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1d2330;background:#f6f7f9}
        h1{font-size:1.4rem;margin:0 0 .2rem}p.sub{color:#5b6474;margin:0 0 1.5rem}
        table{width:100%;border-collapse:collapse;background:#fff;border-radius:10px;overflow:hidden;box-shadow:0 1px 3px #0001}
        th,td{text-align:left;padding:.7rem .9rem;border-bottom:1px solid #eceef2;vertical-align:top;white-space:nowrap}
        td:first-child{white-space:normal;word-break:break-all}a.open{font-weight:600}
        th{font-size:.8rem;text-transform:uppercase;letter-spacing:.04em;color:#5b6474;background:#fafbfc}
        code{font-size:.75rem;color:#5b6474}a{color:#2457c5;text-decoration:none}a:hover{text-decoration:underline}
        .bar{width:7rem;height:.5rem;background:#e6e9ef;border-radius:4px;overflow:hidden;margin:.45rem 0 .2rem}
        .bar span{display:block;height:100%;background:#2f9e6e}.empty{color:#5b6474;text-align:center}
        </style></head><body>
        <h1>webseed gateway</h1>
        <p class="sub">Every byte served here was verified against its site's Merkle roots. \(sites.count) site\(sites.count == 1 ? "" : "s") · <a href="/api/status">JSON</a></p>
        \(peerLine(peer))
        \(nameTable(names, port: port))
        \(trackerTable(trackers))
        <table><tr><th>Site</th><th>Size</th><th>Verified</th><th>Peers</th><th>Up</th><th>Down</th><th>Open</th></tr>
        \(rows)</table></body></html>

        """
    }

    static func json(sites: GatewaySites, names: GatewayNames? = nil, port: Int, peer: PeerEndpoint?, trackers: [TrackerState] = [],
                     listenHost: String = "127.0.0.1") -> String {
        let now = ProcessInfoUptime.now
        let items = sites.all.map { site -> String in
            let s = summary(site, port: port, now: now)
            return "{\"site_id\":\"\(site.id)\",\"v2_infohash\":\"\(site.v2Hash.hex)\",\"name\":\(s.name.map(quote) ?? "null"),"
                + "\"bytes\":\(s.total),\"verified\":\(s.verified),\"peers\":\(s.peers),\"upload_rate\":\(Int64(s.up)),"
                + "\"download_rate\":\(Int64(s.down)),\"url\":\(quote(s.url)),\"path_url\":\(quote("http://localhost:\(port)/site/\(site.id)/")),"
                + "\"web_seed\":\(quote(WebSeedURL.base(listenHost: listenHost, port: port, siteID: site.id)))}"
        }
        var head = ""
        if let peer {
            head = "\"peer_address\":\(quote(peer.address)),\"port_mapping\":"
            if let m = peer.mapping {
                head += "{\"method\":\(quote(m.method)),\"external_address\":\(quote(m.externalAddress)),"
                    + "\"tcp\":\(m.tcp.map(String.init) ?? "null"),\"udp\":\(m.udp.map(String.init) ?? "null")},"
            } else {
                head += "null,"
            }
        }
        let named = (names?.statuses ?? []).map { n -> String in
            let wall = wallClock()
            var o = "{\"name\":\(quote(n.name)),\"seq\":\(n.version.map { String($0.seq) } ?? "null"),"
                + "\"site_id\":\(n.version.map { quote($0.siteID) } ?? "null"),"
                + "\"last_resolved\":\(n.resolvedAt.map { quote(isoTime($0)) } ?? "null"),"
                + "\"last_resolved_seconds_ago\":\(n.resolvedAt.map { String(Int(max(0, wall - $0))) } ?? "null"),"
                + "\"url\":\(quote("http://\(n.name).localhost:\(port)/")),\"last_refusal\":"
            if case let (r, at)? = n.refusal {
                o += "{\"code\":\(quote(r.code)),\"reason\":\(quote(r.reason)),\"at\":\(quote(isoTime(at)))}"
            } else {
                o += "null"
            }
            return o + "}"
        }
        let tracked = trackers.map { t -> String in
            "{\"url\":\(quote(t.url)),\"site\":\(quote(t.site)),\"hash\":\(quote(t.hash)),\"state\":\(quote(t.state)),"
                + "\"last_error\":\(t.lastError.map(quote) ?? "null"),\"peers\":\(t.peers.map(String.init) ?? "null"),"
                + "\"last_announce_seconds_ago\":\(t.secondsAgo.map(String.init) ?? "null")}"
        }
        return "{" + head + "\"names\":[" + named.joined(separator: ",") + "],\"trackers\":[" + tracked.joined(separator: ",") + "],"
            + "\"sites\":[" + items.joined(separator: ",") + "]}"
    }

    /// The names followed, with their current version (nothing without names).
    private static func nameTable(_ names: GatewayNames?, port: Int) -> String {
        guard let statuses = names?.statuses, !statuses.isEmpty else { return "" }
        let wall = wallClock()
        var rows = ""
        for n in statuses {
            let site = n.version.map { "<a href=\"/site/\($0.siteID)/\"><code>\($0.siteID.prefix(10))…</code></a>" } ?? "(resolving)"
            let resolved = n.resolvedAt.map { "\(Int(max(0, wall - $0))) s ago" } ?? "never"
            let refusal = n.refusal.map { "\(escape($0.0.reason)) <small>(\(Int(max(0, wall - $0.at))) s ago)</small>" } ?? ""
            rows += """
            <tr><td><strong><a class="open" href="http://\(n.name).localhost:\(port)/">\(n.name)</a></strong></td>
            <td>\(n.version.map { String($0.seq) } ?? "-")</td><td>\(site)</td><td>\(resolved)</td><td>\(refusal)</td></tr>

            """
        }
        return """
        <table style="margin-bottom:1.5rem"><tr><th>Name</th><th>Seq</th><th>Site</th><th>Last resolved</th><th>Last refusal</th></tr>
        \(rows)</table>
        """
    }

    /// The trackers announced to, each with its state and last error (nothing without trackers).
    private static func trackerTable(_ trackers: [TrackerState]) -> String {
        guard !trackers.isEmpty else { return "" }
        var rows = ""
        for t in trackers {
            let when = t.secondsAgo.map { "\($0) s ago" } ?? "-"
            rows += """
            <tr><td><code>\(escape(t.url))</code></td><td>\(escape(t.site))<br><code>\(t.hash.prefix(12))…</code></td>
            <td>\(escape(t.state))</td><td>\(t.peers.map(String.init) ?? "-")</td><td>\(when)</td><td>\(escape(t.lastError ?? ""))</td></tr>

            """
        }
        return """
        <table style="margin-bottom:1.5rem"><tr><th>Tracker</th><th>Site</th><th>State</th><th>Peers</th><th>Last announce</th><th>Last error</th></tr>
        \(rows)</table>
        """
    }

    /// "2026-12-05T13:40:00Z".
    static func isoTime(_ seconds: Double) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// "Peers reach this host at 1.2.3.4:6881 (mapped by UPnP)."
    private static func peerLine(_ peer: PeerEndpoint?) -> String {
        guard let peer else { return "" }
        let how: String
        if let m = peer.mapping {
            how = " (port mapped on the router by \(m.methodLabel))"
        } else {
            how = " (no router mapping: peers outside this network may not reach it)"
        }
        return "<p class=\"sub\">Peers reach this host at <code>\(escape(peer.address))</code>\(escape(how)).</p>"
    }

    private struct Summary {
        var name: String?
        var total: Int64 = 0
        var verified: Int64 = 0
        var peers = 0
        var up = 0.0
        var down = 0.0
        var url = ""
    }

    private static func summary(_ site: GatewaySites.Site, port: Int, now: Double) -> Summary {
        var s = Summary()
        s.url = "http://\(site.id).localhost:\(port)/"
        s.name = site.name
        let stats = site.content.stats
        s.total = stats.total
        s.verified = stats.verified
        s.peers = stats.peers
        (s.up, s.down) = site.sampleRates(stats, now: now)
        return s
    }

    static func listing(folder: String, entries: [SiteIndex.Entry]) -> String {
        let title = "/" + folder + (folder.isEmpty ? "" : "/")
        var items = folder.isEmpty ? "" : "<li><a href=\"../\">../</a></li>\n"
        for e in entries {
            let href = SitePath.encode(e.name) + (e.isFolder ? "/" : "")
            items += "<li><a href=\"\(escape(href))\">\(escape(e.name))\(e.isFolder ? "/" : "")</a>\(e.isFolder ? "" : " <small>\(bytes(e.size))</small>")</li>\n"
        }
        return """
        <!doctype html>
        <html><head><meta charset="utf-8"><title>Index of \(escape(title))</title>
        <style>body{font:15px/1.6 system-ui,sans-serif;margin:2rem}small{color:#666}</style></head>
        <body><h1>Index of \(escape(title))</h1><ul>
        \(items)</ul></body></html>

        """
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            // C1 and DEL are controls too, and U+2028/2029 end a line in JavaScript:
            // all of them escaped keeps the JSON one safe line wherever it is pasted.
            case _ where u.value < 0x20 || (0x7F...0x9F).contains(u.value) || u.value == 0x2028 || u.value == 0x2029:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    static func bytes(_ n: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n)
        var u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        if u == 0 { return "\(n) B" }
        let tenths = Int64((v * 10).rounded())
        return "\(tenths / 10).\(tenths % 10) \(units[u])"
    }

    /// The "magnet" string of a small JSON object `{"magnet":"…"}` (no escapes other than \/ and \").
    static func magnetField(_ body: String) -> String? {
        guard let key = body.range(of: "\"magnet\"") else { return nil }
        var rest = body[key.upperBound...].drop { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard rest.first == ":" else { return nil }
        rest = rest.dropFirst().drop { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard rest.first == "\"" else { return nil }
        var out = ""
        var escaped = false
        for c in rest.dropFirst() {
            if escaped { out.append(c); escaped = false; continue }
            if c == "\\" { escaped = true; continue }
            if c == "\"" { return out }
            out.append(c)
        }
        return nil
    }
}

/// Monotonic seconds.
enum ProcessInfoUptime {
    static var now: Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

#if canImport(Glibc)
import Glibc
#endif
