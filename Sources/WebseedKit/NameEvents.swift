import Names

/// What following a name (`NameResolver`) reports.
enum NameEvent: Sendable, Equatable {
    /// The name's first version: its torrent matched the item.
    case resolved(name: String, seq: Int64, siteID: String)
    /// A newer version replaced the one served.
    case switched(name: String, seq: Int64, siteID: String, fromSeq: Int64)
    /// An item, or the torrent it names, was not used; the version served stays.
    case refused(name: String, NameRefusal)
}

extension EventSink {
    /// `name_resolved` / `name_switched` (name, seq, site_id, from_seq) and `name_refused`
    /// (name, code, reason; a warning in text).
    func nameEvent(_ e: NameEvent, port: Int?) {
        switch e {
        case .resolved(let name, let seq, let id), .switched(let name, let seq, let id, _):
            var from: Int64?
            if case .switched(_, _, _, let f) = e { from = f }
            let url = port.map { "http://\(name).localhost:\($0)/" }
            emitEvent(["event": .string(from == nil ? "name_resolved" : "name_switched"), "name": .string(name), "seq": .number(seq),
                       "site_id": .string(id), "from_seq": from.map { .number($0) } ?? .null, "url": JSON(url)],
                      text: "name \(name): seq \(seq)\(from.map { " (was seq \($0))" } ?? ""), site \(id)\(url.map { "\n  open     \($0)" } ?? "")")
        case .refused(let name, let why):
            warning("name \(name): refused: \(why.description)",
                    object: ["event": "name_refused", "name": .string(name), "code": .string(why.code), "reason": .string(why.description)])
        }
    }
}
