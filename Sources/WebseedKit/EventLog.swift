import Dispatch
import FoundationEssentials
import Metainfo
import Storage
import Swarm
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What `seed` tells its user: text lines, or one JSON object per line with `--json`.
/// Called from the network thread too, so output is serialised.
final class EventLog: Sendable {
    let json: Bool
    private let lock = Mutex(())

    init(json: Bool) { self.json = json }

    private func emit(_ object: [String: JSON], text: String?) {
        lock.withLock { _ in
            if json {
                print(JSON.object(object).text)
            } else if let text {
                print(text)
            }
            fflush(nil)
        }
    }

    func emitEvent(_ object: [String: JSON], text: String?) { emit(object, text: text) }

    func warning(_ message: String) {
        if json { emit(["event": "warning", "message": .string(message)], text: nil) } else { printError("warning: \(message)") }
    }

    func packaged(_ m: Metainfo, directory: String) {
        emit(["event": "packaged", "name": .string(m.name), "directory": .string(directory), "files": JSON(m.files.count)],
             text: "packaged \(directory) (\(m.files.count) files, \(formatBytes(m.totalSize)))")
    }

    func verified(_ m: Metainfo, local: LocalData) {
        let share = "\(local.pieces.cardinality)/\(local.pieces.count) pieces"
        emit(["event": "verified", "name": .string(m.name), "pieces": JSON(local.pieces.cardinality), "of": JSON(local.pieces.count),
              "hashed_files": JSON(local.filesHashed), "resumed_files": JSON(local.filesFromResume),
              "problems": JSON(local.problems.map(\.description))],
             text: "verified \(m.name): \(share) (\(local.filesHashed) files hashed, \(local.filesFromResume) unchanged since the last check)")
    }

    func listening(host: String, port: Int) {
        emit(["event": "listening", "host": .string(host), "port": JSON(port)], text: "listening on \(host):\(port)")
    }

    func site(_ m: Metainfo, magnet: String, torrent: String?, gatewayPort: Int?) {
        let url = gatewayPort.flatMap { p in m.siteID.map { "http://\($0).localhost:\(p)/" } }
        emit(["event": "site", "name": .string(m.name), "v2_infohash": JSON(m.v2InfoHash?.hex), "v1_infohash": JSON(m.v1InfoHash?.hex),
              "site_id": JSON(m.siteID), "magnet": .string(magnet), "torrent": JSON(torrent), "gateway_url": JSON(url)],
             text: """
             seeding \(m.name)
               site id  \(m.siteID ?? "-")
               magnet   \(magnet)\(url.map { "\n  open     \($0)" } ?? "")
             """)
    }

    func gatewaySite(id: String, name: String?, port: Int) {
        let url = "http://\(id).localhost:\(port)/"
        emit(["event": "gateway_site", "site_id": .string(id), "name": JSON(name), "url": .string(url)],
             text: "site \(name ?? id)\n  open     \(url)")
    }

    func gateway(host: String, port: Int, single: Bool) {
        let shown = host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host
        emit(["event": "gateway", "host": .string(host), "port": JSON(port), "url": .string("http://localhost:\(port)/")],
             text: "gateway  http://localhost:\(port)/ (status)\(single ? ", http://\(shown):\(port)/ (the site)" : "")")
    }

    func ready(offline: Bool) {
        emit(["event": "ready", "offline": .bool(offline)],
             text: offline ? "ready (offline: no public DHT routers, trackers, port mapping or local discovery)" : "ready")
    }

    func seederEvent(_ e: SeederEvent) {
        switch e {
        case .peerConnected(let address, let torrent, let v2):
            if json { emit(["event": "peer_connected", "address": .string(address), "site": .string(torrent), "v2": .bool(v2)], text: nil) }
        case .peerClosed(let address, let reason):
            if json { emit(["event": "peer_closed", "address": .string(address), "reason": .string(reason)], text: nil) }
        case .fileChanged(let torrent, let path):
            let message = "\(torrent): \(path) changed on disk since it was verified; its pieces are no longer served"
            if json { emit(["event": "file_changed", "site": .string(torrent), "path": .string(path)], text: nil) } else { warning(message) }
        }
    }

    func stopped(uploaded: Int64) {
        emit(["event": "stopped", "uploaded": .number(uploaded)], text: "stopped; uploaded \(formatBytes(uploaded)) in this session")
    }
}
