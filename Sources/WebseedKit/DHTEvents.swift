import DHT
import DHTProtocol

/// One JSON object (and a text line, or nil) for a DHT event.
func describeDHT(_ e: DHTEvent, host: String, names: [NodeID: String]) -> ([String: JSON], String?)? {
    switch e {
    case .started(let id, let udpPort):
        return (["event": "dht", "node_id": .string(id), "host": .string(host), "port": JSON(udpPort)], "dht node \(id.prefix(12))… on UDP port \(udpPort)")
    case .announced(let hash, let nodes):
        var o: [String: JSON] = ["event": "dht_announced", "hash": .string(hash.hex), "nodes": JSON(nodes)]
        if let n = names[hash] { o["site"] = .string(n) }
        return (o, nil)
    case .peers(let hash, let peers, let seconds):
        return (["event": "dht_peers", "hash": .string(hash.hex), "peers": JSON(peers.map(\.description)), "ms": .double(seconds * 1000)], nil)
    case .nodes(let n):
        return (["event": "dht_nodes", "count": JSON(n)], nil)
    case .externalAddress(let ip):
        return (["event": "dht_external_address", "ip": .string(ip)], "dht: other nodes see this host as \(ip)")
    case .itemRefused(let target, let from, let reason):
        return (["event": "dht_item_refused", "target": .string(target.hex), "from": .string(from.description), "reason": .string(reason)],
                "dht: refused the item \(target.hex.prefix(12))… from \(from): \(reason)")
    }
}

extension EventSink {
    /// A lookup of the `dht` command ended: with the peers found, or none (nil: time ran out).
    func lookupDone(_ hash: NodeID, peers: [Endpoint]?) {
        let text = peers.map { "\(hash.hex): \($0.map(\.description).joined(separator: " "))" } ?? "\(hash.hex): no peers found"
        emitEvent(["event": "lookup_done", "hash": .string(hash.hex), "found": JSON(peers?.count ?? 0)], text: text)
    }
}
