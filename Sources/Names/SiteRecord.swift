import Bencode
import Hashing
import Metainfo

/// What a name points at: the value of its BEP 44 mutable item.
///
/// BEP 46 gives the value as `{"ih": <20 bytes>}`, the torrent's v1 info hash; webseed
/// puts the full 32-byte v2 info hash beside it under `"v2"`, so both sit under the
/// signature: `d2:ih20:…2:v232:…e`. `ih` is the v1 hash of a hybrid (BEP 46 readers
/// that follow the text find the swarm), or the truncated v2 hash of a v2-only torrent
/// (the 20 bytes BEP 52 uses on the wire for it).
public struct SiteRecord: Sendable, Equatable {
    public let ih: [UInt8]
    public let v2: SHA256Digest

    /// The record of a torrent; nil for one without a v2 info hash (webseed's sites are v2).
    public init?(metainfo: Metainfo) {
        guard let v2 = metainfo.v2InfoHash else { return nil }
        self.v2 = v2
        ih = metainfo.v1InfoHash?.bytes ?? Array(v2.bytes.prefix(20))
    }

    public init(ih: [UInt8], v2: SHA256Digest) throws(SiteRecordError) {
        guard ih.count == 20 else { throw .badValue("ih is \(ih.count) bytes, not 20") }
        self.ih = ih
        self.v2 = v2
    }

    /// Reads an item's value; anything but a dictionary with a 20-byte `ih` and a 32-byte
    /// `v2` is refused (other keys are ignored, as BEP 46 readers do).
    public init(value: BValue) throws(SiteRecordError) {
        guard let d = value.dictionary else { throw .badValue("the value is a \(value.typeName), not a dictionary") }
        guard let ih = d["ih"]?.bytes else { throw .badValue("the value has no \"ih\" string") }
        guard let v2bytes = d["v2"]?.bytes else {
            throw .badValue("the value names only a v1 torrent (no \"v2\" hash); webseed serves v2 and hybrid sites")
        }
        guard let v2 = SHA256Digest(bytes: v2bytes) else { throw .badValue("v2 is \(v2bytes.count) bytes, not 32") }
        try self.init(ih: ih, v2: v2)
    }

    public var value: BValue { .dictionary(BDictionary([("ih", .bytes(ih)), ("v2", .bytes(v2.bytes))])) }

    /// The site id the record names (its v2 info hash, base32).
    public var siteID: String { SiteID.encode(v2) }

    /// Whether `metainfo` is the torrent this record names: its v2 hash is `v2`, and `ih`
    /// is its v1 hash (hybrid) or its truncated v2 hash (v2 only).
    public func matches(_ metainfo: Metainfo) -> Bool {
        SiteRecord(metainfo: metainfo) == self
    }
}

public enum SiteRecordError: Error, Equatable, Sendable, CustomStringConvertible {
    case badValue(String)

    public var description: String {
        switch self {
        case .badValue(let why): "the item is not a site record: \(why)"
        }
    }
}
