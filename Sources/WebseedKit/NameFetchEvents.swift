import Hashing
import Metainfo
import Names

/// What `get` and `info` on a name say (NameFetchSession, NameInfo).
extension EventSink {
    /// `name_resolved`: version `seq` of the name, its torrent's metadata verified against the item.
    func nameResolved(_ name: String, _ version: NameTracker.Version) {
        let r = version.record
        emitEvent(["event": "name_resolved", "name": .string(name), "seq": .number(version.seq), "site_id": .string(r.siteID),
                   "v2_infohash": .string(r.v2.hex), "ih": .string(HexCoding.encode(r.ih))],
                  text: "\(name): seq \(version.seq) is site \(r.siteID)")
    }

    /// `name_updated`: the directory now holds version `seq` (`changed` files moved in,
    /// `removed` deleted, `downloaded` payload bytes fetched for it).
    func nameUpdated(_ name: String, seq: Int64, siteID: String, directory: String, files: Int, changed: Int, removed: Int, downloaded: Int64) {
        emitEvent(["event": "name_updated", "name": .string(name), "seq": .number(seq), "site_id": .string(siteID),
                   "directory": .string(directory), "files": JSON(files), "changed": JSON(changed), "removed": JSON(removed),
                   "downloaded": .number(downloaded)],
                  text: "\(name): seq \(seq) in place in \(visible(directory)) (\(changed) file\(changed == 1 ? "" : "s") changed, \(removed) removed, \(formatBytes(downloaded)) downloaded)")
    }

    /// `name_refused`: an item or the torrent it names was not used; the directory is unchanged.
    func nameRefused(_ name: String, _ refusal: NameRefusal) {
        var o: [String: JSON] = ["event": "name_refused", "name": .string(name), "code": .string(refusal.code), "reason": .string(refusal.description)]
        switch refusal {
        case .older(let seq, _), .sameSeqOtherContent(let seq), .torrentMismatch(let seq), .torrentNeverAppeared(let seq, _), .notPending(let seq):
            o["seq"] = .number(seq)
        default:
            o["seq"] = .null
        }
        warning("\(name): \(refusal.description); nothing changed", object: o)
    }
}
