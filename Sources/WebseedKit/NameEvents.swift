import Hashing
import Metainfo
import Names
import Signing

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

/// What `seed --key` says as it publishes the site's name.
extension EventSink {
    /// `name_published`: the item went to `sent_to` DHT nodes. A refresh of the same item
    /// (every 30 minutes) is a detail only scripts are shown.
    func namePublished(_ key: Ed25519PublicKey, record: SiteRecord, seq: Int64, sentTo: Int, refresh: Bool) {
        let name = SiteName.name(for: key)
        let magnet = SiteName.magnet(for: key)
        emitEvent(["event": "name_published", "name": .string(name), "magnet": .string(magnet), "seq": .number(seq),
                   "site_id": .string(record.siteID), "ih": .string(HexCoding.encode(record.ih)), "v2_infohash": .string(record.v2.hex),
                   "sent_to": JSON(sentTo), "refresh": .bool(refresh)],
                  text: refresh ? nil : """
                      name \(name)
                        magnet   \(magnet)
                        seq \(seq): site id \(record.siteID), put to \(sentTo) DHT node\(sentTo == 1 ? "" : "s")
                      """)
    }

    /// `name_put`: a put reached no node (the DHT node knows nobody yet); tried again shortly.
    func nameNotReached(_ key: Ed25519PublicKey, seq: Int64) {
        emitEvent(["event": "name_put", "name": .string(SiteName.name(for: key)), "seq": .number(seq), "sent_to": JSON(0)], text: nil)
    }

    /// `name_outbid` (a warning): the DHT holds `found` naming something else, so `seq` goes above it.
    func nameOutbid(_ key: Ed25519PublicKey, found: Int64, seq: Int64) {
        let name = SiteName.name(for: key)
        warning("the DHT holds seq \(found) of \(name) naming something else (a lost state directory, or another publisher "
                + "with this key); publishing seq \(seq)",
                object: ["event": "name_outbid", "name": .string(name), "found_seq": .number(found), "seq": .number(seq)])
    }

    /// `site_retired`: a replaced version's grace period is over; it is no longer seeded.
    func siteRetired(_ m: Metainfo) {
        emitEvent(["event": "site_retired", "name": .string(m.name), "site_id": JSON(m.siteID)],
                  text: "stopped seeding the previous version \(m.siteID ?? "-") (its grace period is over)")
    }
}
