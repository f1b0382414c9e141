import Logging
import Swarm

/// Everything the engine tells its user, for every command, logged through one swift-log
/// `Logger`: each event is a record whose metadata is its JSON object and whose message is
/// its text line. `TextLogHandler` writes the text lines (warnings on stderr),
/// `JSONLinesLogHandler` one JSON object per line with `--json`; scripts parse both, so they
/// stay byte for byte (`EventFieldsTests` pins the JSON). The events of one part live beside
/// it: SeedEvents, FetchEvents, PortMappingEvents, DHTEvents.
final class EventSink: Sendable {
    /// `get` reports peers in less detail than `seed` and `gateway` (no site; a changed file
    /// only as JSON).
    enum Style: Sendable {
        case serving, downloading
    }

    let json: Bool
    let style: Style
    let logger: Logger
    let console: Console

    init(json: Bool, style: Style = .serving, console: Console = .standard) {
        self.json = json
        self.style = style
        self.console = console
        logger = Logger(label: "webseed") { _ in
            json ? JSONLinesLogHandler(console: console) as any LogHandler : TextLogHandler(console: console)
        }
    }

    /// One event: `object` (with its "event" name) for scripts, `text` for people (nil: a
    /// detail only scripts are shown).
    func emitEvent(_ object: [String: JSON], text: String?) {
        log(text == nil ? .debug : .info, object, message: text)
    }

    /// A warning: `webseed: warning: message` on stderr, or `object` for scripts (by default
    /// a "warning" event with the message).
    func warning(_ message: String, object: [String: JSON]? = nil) {
        log(.warning, object ?? ["event": "warning", "message": .string(message)], message: message)
    }

    private func log(_ level: Logger.Level, _ object: [String: JSON], message: String?) {
        // A record without text still needs a message: its event's name.
        var name = "event"
        if case .string(let s)? = object["event"] { name = s }
        logger.log(level: level, "\(message ?? name)", metadata: object.mapValues(\.metadataValue))
    }

    /// A line redrawn in place on a terminal (progress, status).
    func redraw(_ text: String) {
        console.redraw(text)
    }

    /// `alsoIPv6`: an IPv6 socket on [::] takes the same port (the `*:PORT` listener); said
    /// in the text only, the JSON naming the IPv4 address as before.
    func listening(host: String, port: Int, alsoIPv6: Bool = false) {
        let shown = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        emitEvent(["event": "listening", "host": .string(host), "port": JSON(port)],
                  text: "listening on \(shown)" + (alsoIPv6 ? " and [::]:\(port)" : ""))
    }

    func seederEvent(_ e: SeederEvent) {
        switch (e, style) {
        case (.peerConnected(let address, let torrent, let v2), .serving):
            emitEvent(["event": "peer_connected", "address": .string(address), "site": .string(torrent), "v2": .bool(v2)], text: nil)
        case (.peerConnected(let address, _, let v2), .downloading):
            emitEvent(["event": "peer_connected", "address": .string(address), "v2": .bool(v2)], text: nil)
        case (.peerClosed(let address, let reason), _):
            emitEvent(["event": "peer_closed", "address": .string(address), "reason": .string(reason.description)], text: nil)
        case (.fileChanged(let torrent, let path), .serving):
            warning("\(torrent): \(path) changed on disk since it was verified; its pieces are no longer served",
                    object: ["event": "file_changed", "site": .string(torrent), "path": .string(path)])
        case (.fileChanged(_, let path), .downloading):
            emitEvent(["event": "file_changed", "path": .string(path)], text: nil)
        }
    }
}
