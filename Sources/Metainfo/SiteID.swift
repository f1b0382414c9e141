import Hashing

/// A site's id: the v2 info hash in lowercase RFC 4648 base32 without padding. 52
/// characters, so it fits one DNS label (`<site-id>.localhost`).
public enum SiteID {
    private static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    public static func encode(_ hash: SHA256Digest) -> String { base32(hash.bytes) }

    public static func decode(_ text: String) -> SHA256Digest? {
        guard text.utf8.count == 52, let bytes = base32Decode(text), bytes.count == 32 else { return nil }
        return SHA256Digest(bytes: bytes)
    }

    public static func base32(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for b in bytes {
            buffer = buffer << 8 | UInt32(b)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Case-insensitive, no padding; nil on a character outside the alphabet or
    /// non-zero trailing bits.
    public static func base32Decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for c in text.lowercased().utf8 {
            guard let v = alphabet.firstIndex(of: c) else { return nil }
            buffer = buffer << 5 | UInt32(v)
            bits += 5
            if bits >= 8 {
                out.append(UInt8((buffer >> UInt32(bits - 8)) & 0xff))
                bits -= 8
            }
        }
        guard buffer & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return out
    }
}
