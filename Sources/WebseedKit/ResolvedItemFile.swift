import Bencode
import DHTProtocol
import Signing
import Storage

/// The last item a gateway switched a name to, kept in `<state>/names/<name>/resolved` so a
/// restarted gateway serves the name at once, even with no DHT node reachable. The file holds
/// the signed item as a bencoded dictionary (`k`, `salt`, `seq`, `v`, `sig`, as BEP 44 puts
/// it on the wire); reading it checks the signature again and that the key is the name's, so
/// a file anyone could edit is worth no more than an item from any DHT node.
enum ResolvedItemFile {
    /// Bigger than any item BEP 44 allows (a 1,000-byte value, a 64-byte salt).
    static let maxSize = 4096

    static func path(state: String, name: String) -> String { state + "/names/" + name + "/resolved" }

    static func encode(_ item: MutableItem) -> [UInt8] {
        BValue.dictionary(BDictionary([
            ("k", .bytes(item.publicKey.bytes)), ("salt", .bytes(item.salt)), ("seq", .integer(item.seq)),
            ("v", item.value), ("sig", .bytes(item.signature)),
        ])).encoded()
    }

    /// The item stored for `key`, or nil when there is none or it does not verify.
    static func decode(_ bytes: [UInt8], key: Ed25519PublicKey) -> MutableItem? {
        guard let d = (try? BencodeDecoder.decode(bytes, limits: BencodeLimits(maxInputSize: maxSize, maxDepth: 16, maxItems: 512)))?.dictionary,
              d["k"]?.bytes == key.bytes, let seq = d["seq"]?.integer, let value = d["v"], let sig = d["sig"]?.bytes
        else { return nil }
        return try? MutableItem(publicKey: key, salt: d["salt"]?.bytes ?? [], seq: seq, value: value, signature: sig)
    }

    static func load(state: String, name: String, key: Ed25519PublicKey) -> MutableItem? {
        guard let bytes = try? StateFile.read(path(state: state, name: name), maxSize: maxSize) else { return nil }
        return decode(bytes, key: key)
    }

    /// Stores `item`; a failure only costs the next start its head start, so it is not an error.
    static func save(_ item: MutableItem, state: String, name: String) {
        let path = path(state: state, name: name)
        try? makeDirectories(String(path.dropLast("/resolved".count)))
        try? AtomicFile.write(encode(item), to: path, overwrite: true)
    }
}
