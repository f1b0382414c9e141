import Swarm
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Everything the engine tells its user, for every command: text lines (warnings on
/// stderr), or one JSON object per line with `--json` (scripts parse both: keep them
/// byte for byte). Called from the network threads too, so output is serialised. The
/// events of one part live beside it: SeedEvents, FetchEvents, PortMappingEvents, DHTEvents.
final class EventSink: Sendable {
    /// `get` reports peers in less detail than `seed` and `gateway` (no site; a changed file
    /// only as JSON).
    enum Style: Sendable {
        case serving, downloading
    }

    let json: Bool
    let style: Style
    private let lock = Mutex(())
    /// A progress line is drawn in place: a text line first clears it.
    private let terminalLine = Mutex(false)

    init(json: Bool, style: Style = .serving) {
        self.json = json
        self.style = style
    }

    func emitEvent(_ object: [String: JSON], text: String?) {
        lock.withLock { _ in
            if json {
                print(JSON.object(object).text)
            } else if let text {
                if terminalLine.withLock({ $0 }) { print("\r\u{1b}[K", terminator: "") }
                print(text)
            }
            fflush(nil)
        }
    }

    /// A line redrawn in place on a terminal.
    func redraw(_ text: String) {
        lock.withLock { _ in
            terminalLine.withLock { $0 = true }
            print("\r\u{1b}[K\(text)", terminator: "")
            fflush(nil)
        }
    }

    func warning(_ message: String) {
        if json { emitEvent(["event": "warning", "message": .string(message)], text: nil) } else { printError("warning: \(message)") }
    }

    func listening(host: String, port: Int) {
        emitEvent(["event": "listening", "host": .string(host), "port": JSON(port)], text: "listening on \(host):\(port)")
    }

    func seederEvent(_ e: SeederEvent) {
        switch style {
        case .serving: servingPeerEvent(e)
        case .downloading: downloadingPeerEvent(e)
        }
    }

    private func servingPeerEvent(_ e: SeederEvent) {
        switch e {
        case .peerConnected(let address, let torrent, let v2):
            if json { emitEvent(["event": "peer_connected", "address": .string(address), "site": .string(torrent), "v2": .bool(v2)], text: nil) }
        case .peerClosed(let address, let reason):
            if json { emitEvent(["event": "peer_closed", "address": .string(address), "reason": .string(reason)], text: nil) }
        case .fileChanged(let torrent, let path):
            let message = "\(torrent): \(path) changed on disk since it was verified; its pieces are no longer served"
            if json { emitEvent(["event": "file_changed", "site": .string(torrent), "path": .string(path)], text: nil) } else { warning(message) }
        }
    }

    private func downloadingPeerEvent(_ e: SeederEvent) {
        guard json else { return }
        switch e {
        case .peerConnected(let address, _, let v2):
            emitEvent(["event": "peer_connected", "address": .string(address), "v2": .bool(v2)], text: nil)
        case .peerClosed(let address, let reason):
            emitEvent(["event": "peer_closed", "address": .string(address), "reason": .string(reason)], text: nil)
        case .fileChanged(_, let path):
            emitEvent(["event": "file_changed", "path": .string(path)], text: nil)
        }
    }
}
