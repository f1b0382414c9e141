import Hashing
import Metainfo
import Signing

/// A site's stable name: its publisher's Ed25519 public key, written so it fits one DNS
/// label and cannot be taken for a site id.
///
/// Form: `k-` followed by the 32-byte key in lowercase RFC 4648 base32 without padding
/// (52 characters), 54 characters in all, e.g.
/// `k-o77yjec2sgjwgz6acnqiamie7esdf7gzassdkemhnx24347h4vea`. A site id is exactly 52
/// base32 characters with no hyphen, so the two never collide, by length or by the
/// hyphen; the label stays within DNS's 63 and does not start or end with a hyphen nor
/// have one in its 3rd and 4th places (IDNA's `xn--`).
public enum SiteName {
    public static let prefix = "k-"
    public static let length = 54

    public static func name(for key: Ed25519PublicKey) -> String { prefix + SiteID.base32(key.bytes) }

    /// The key a name stands for; nil for anything else (a site id, a wrong length, a
    /// character outside base32). Upper case is accepted: DNS names are case-insensitive.
    public static func publicKey(fromName name: String) -> Ed25519PublicKey? {
        let lower = name.lowercased()
        guard lower.utf8.count == length, lower.hasPrefix(prefix),
              let bytes = SiteID.base32Decode(String(lower.dropFirst(prefix.count))), bytes.count == Ed25519.publicKeyLength
        else { return nil }
        return try? Ed25519PublicKey(bytes: bytes)
    }

    /// BEP 46's magnet: `magnet:?xs=urn:btpk:<64 hex>`, plus `&s=<hex salt>` when the
    /// item has a salt.
    public static func magnet(for key: Ed25519PublicKey, salt: [UInt8] = []) -> String {
        "magnet:?xs=urn:btpk:" + HexCoding.encode(key.bytes) + (salt.isEmpty ? "" : "&s=" + HexCoding.encode(salt))
    }

    /// A name as a user gives it to `get`, `info` or the gateway: the `k-…` label, or a
    /// BEP 46 magnet (`xs=urn:btpk:<64 hex>`, optional `s=<hex salt>` of at most 64 bytes).
    public static func parse(_ text: String) -> (key: Ed25519PublicKey, salt: [UInt8])? {
        if let key = publicKey(fromName: text) { return (key, []) }
        guard text.lowercased().hasPrefix("magnet:?") else { return nil }
        var key: Ed25519PublicKey?
        var salt: [UInt8] = []
        for part in text.dropFirst("magnet:?".count).split(separator: "&") {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { continue }
            let value = String(kv[1])
            switch kv[0].lowercased() {
            case "xs":
                let prefix = "urn:btpk:"
                guard value.lowercased().hasPrefix(prefix), key == nil,
                      let bytes = HexCoding.decode(String(value.dropFirst(prefix.count)).lowercased()),
                      let k = try? Ed25519PublicKey(bytes: bytes) else { return nil }
                key = k
            case "s":
                guard let bytes = HexCoding.decode(value.lowercased()), bytes.count <= 64 else { return nil }
                salt = bytes
            default:
                continue
            }
        }
        return key.map { ($0, salt) }
    }
}
