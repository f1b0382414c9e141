import Gateway
import Metainfo
import Storage

/// What `seed`, `gateway` and `dht` say as they start and stop.
extension EventSink {
    func packaged(_ m: Metainfo, directory: String) {
        emitEvent(["event": "packaged", "name": .string(m.name), "directory": .string(directory), "files": JSON(m.files.count)],
             text: "packaged \(visible(directory)) (\(m.files.count) files, \(formatBytes(m.totalSize)))")
    }

    func verified(_ m: Metainfo, local: LocalData) {
        let share = "\(local.pieces.cardinality)/\(local.pieces.count) pieces"
        emitEvent(["event": "verified", "name": .string(m.name), "pieces": JSON(local.pieces.cardinality), "of": JSON(local.pieces.count),
              "hashed_files": JSON(local.filesHashed), "resumed_files": JSON(local.filesFromResume),
              "problems": JSON(local.problems.map(\.description))],
             text: "verified \(visible(m.name)): \(share) (\(local.filesHashed) files hashed, \(local.filesFromResume) unchanged since the last check)")
    }

    /// `gatewayPort` (nil: no gateway) and `gatewayHost`: where the gateway listens, for the site's URLs.
    func site(_ m: Metainfo, magnet: String, torrent: String?, gatewayPort: Int?, gatewayHost: String = "127.0.0.1") {
        let url = gatewayPort.flatMap { p in m.siteID.map { "http://\($0).localhost:\(p)/" } }
        let webSeed = gatewayPort.flatMap { p in m.siteID.map { WebSeedURL.base(listenHost: gatewayHost, port: p, siteID: $0) } }
        emitEvent(["event": "site", "name": .string(m.name), "v2_infohash": JSON(m.v2InfoHash?.hex), "v1_infohash": JSON(m.v1InfoHash?.hex),
              "site_id": JSON(m.siteID), "magnet": .string(magnet), "torrent": JSON(torrent), "gateway_url": JSON(url),
              "web_seed": JSON(webSeed)],
             text: """
             seeding \(visible(m.name))
               site id  \(m.siteID ?? "-")
               magnet   \(magnet)\(url.map { "\n  open     \($0)" } ?? "")\(webSeed.map { "\n  web seed \($0)" } ?? "")
             """)
    }

    func gatewaySite(id: String, name: String?, port: Int, host: String = "127.0.0.1") {
        let url = "http://\(id).localhost:\(port)/"
        let webSeed = WebSeedURL.base(listenHost: host, port: port, siteID: id)
        emitEvent(["event": "gateway_site", "site_id": .string(id), "name": JSON(name), "url": .string(url), "web_seed": .string(webSeed)],
             text: "site \(visible(name ?? id))\n  open     \(url)\n  web seed \(webSeed)")
    }

    func gateway(host: String, port: Int, single: Bool) {
        let shown = host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host
        emitEvent(["event": "gateway", "host": .string(host), "port": JSON(port), "url": .string("http://localhost:\(port)/")],
             text: "gateway  http://localhost:\(port)/ (status)\(single ? ", http://\(shown):\(port)/ (the site)" : "")")
    }

    func ready(offline: Bool) {
        emitEvent(["event": "ready", "offline": .bool(offline)],
             text: offline ? "ready (offline: no public DHT routers, trackers, port mapping or local discovery)" : "ready")
    }

    func stopped(uploaded: Int64) {
        emitEvent(["event": "stopped", "uploaded": .number(uploaded)], text: "stopped; uploaded \(formatBytes(uploaded)) in this session")
    }
}
