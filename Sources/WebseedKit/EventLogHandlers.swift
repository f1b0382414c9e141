import Logging

// The two ways the engine's events are written. An event is a swift-log record whose
// metadata is the event's JSON object ("event" names it); its message is the text line.
// Events that only scripts need are logged at `.debug` and have no text line; warnings
// are logged at `.warning`.

/// `--json`: one JSON object per line on standard output, the record's metadata with its
/// keys sorted. Scripts parse these: names, keys and value types stay as they are.
struct JSONLinesLogHandler: LogHandler {
    let console: Console
    var logLevel: Logger.Level = .debug
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(console: Console) {
        self.console = console
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { _, new in new } }
        if let own = event.metadata { fields.merge(own) { _, new in new } }
        // A record that is not one of the engine's events (a library's) still comes out as one.
        if fields["event"] == nil {
            fields["event"] = "log"
            fields["level"] = .string(event.level.rawValue)
            fields["message"] = .string(event.message.description)
        }
        console.line(JSON.object(fields.mapValues(JSON.init(metadata:))).text)
    }
}

/// A terminal's lines: an event's text on standard output, a warning or error as
/// `webseed: warning: …` on standard error; `.debug` and below are not shown.
struct TextLogHandler: LogHandler {
    let console: Console
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(console: Console) {
        self.console = console
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        switch event.level {
        case .trace, .debug:
            return
        case .info, .notice:
            console.line(event.message.description)
        case .warning:
            console.line("webseed: warning: \(visible(event.message.description))", to: .standardError)
        case .error, .critical:
            console.line("webseed: error: \(visible(event.message.description))", to: .standardError)
        }
    }
}

extension JSON: CustomStringConvertible {
    public var description: String { text }

    /// As swift-log metadata: strings, arrays and objects as its own kinds; numbers,
    /// booleans and null as this value, so that the JSON handler writes them as they were
    /// (other handlers print their JSON text).
    var metadataValue: Logger.MetadataValue {
        switch self {
        case .string(let s): .string(s)
        case .array(let a): .array(a.map(\.metadataValue))
        case .object(let o): .dictionary(o.mapValues(\.metadataValue))
        case .number, .double, .bool, .null: .stringConvertible(self)
        }
    }

    /// The value `metadataValue` made; metadata from elsewhere becomes strings, arrays and objects.
    init(metadata value: Logger.MetadataValue) {
        switch value {
        case .string(let s): self = .string(s)
        case .stringConvertible(let json as JSON): self = json
        case .stringConvertible(let other): self = .string(other.description)
        case .array(let a): self = .array(a.map(JSON.init(metadata:)))
        case .dictionary(let d): self = .object(d.mapValues(JSON.init(metadata:)))
        }
    }
}
