import Bencode
import DHT
import DHTProtocol
import Hashing
import Signing

/// BEP 44 items the `dht` command reads or puts once (`--get-item`, `--put-item`): a
/// diagnostic and measuring tool for names (issue 13), and what the interop tests drive.
/// Each is retried every second while the node has found nothing or no one to put to
/// (a node that just started knows nobody yet), for at most `attempts` tries.
public struct DHTItemGet: Sendable {
    public var key: Ed25519PublicKey
    public var salt: [UInt8]
    public init(key: Ed25519PublicKey, salt: [UInt8]) {
        self.key = key
        self.salt = salt
    }
}

func startItemOperations(_ node: DHTService, log: EventSink, gets: [DHTItemGet], puts: [MutableItem], attempts: Int = 30) {
    for g in gets {
        Task {
            let started = ContinuousClock.now
            for attempt in 1...attempts {
                if let item = await node.item(key: g.key, salt: g.salt) {
                    log.itemFound(g, item, seconds: (ContinuousClock.now - started) / .seconds(1))
                    return
                }
                if attempt < attempts { try? await Task.sleep(for: .seconds(1)) }
            }
            log.itemFound(g, nil, seconds: (ContinuousClock.now - started) / .seconds(1))
        }
    }
    for item in puts {
        Task {
            var last: (found: DHTItem?, sentTo: Int) = (nil, 0)
            for attempt in 1...attempts {
                last = await node.put(.mutable(item))
                if last.sentTo > 0 { break }
                if attempt < attempts { try? await Task.sleep(for: .seconds(1)) }
            }
            log.itemPut(item, sentTo: last.sentTo, found: last.found)
        }
    }
}

extension EventSink {
    /// `dht_item`: what a `--get-item` found (the highest valid seq), or `found: false`.
    func itemFound(_ g: DHTItemGet, _ item: MutableItem?, seconds: Double) {
        var o: [String: JSON] = ["event": "dht_item", "key": .string(HexCoding.encode(g.key.bytes)), "salt": .string(HexCoding.encode(g.salt)),
                                 "found": .bool(item != nil), "ms": .double(seconds * 1000)]
        if let item {
            o["seq"] = .number(item.seq)
            o["value"] = .string(HexCoding.encode(item.encodedValue))
        }
        let text = item.map { "item \(HexCoding.encode(g.key.bytes).prefix(12))…: seq \($0.seq), \($0.encodedValue.count) bytes" }
            ?? "item \(HexCoding.encode(g.key.bytes).prefix(12))…: not found"
        emitEvent(o, text: text)
    }

    /// `dht_item_put`: a `--put-item` went to `sent_to` nodes; `found_seq` is the highest seq
    /// the lookup saw (above the item's own: the nodes keep that newer one).
    func itemPut(_ item: MutableItem, sentTo: Int, found: DHTItem?) {
        var o: [String: JSON] = ["event": "dht_item_put", "key": .string(HexCoding.encode(item.publicKey.bytes)),
                                 "salt": .string(HexCoding.encode(item.salt)), "seq": .number(item.seq), "sent_to": JSON(sentTo)]
        if case .mutable(let m)? = found { o["found_seq"] = .number(m.seq) }
        emitEvent(o, text: "item \(HexCoding.encode(item.publicKey.bytes).prefix(12))… seq \(item.seq) put to \(sentTo) nodes")
    }
}
