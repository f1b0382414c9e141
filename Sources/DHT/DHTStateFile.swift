import DHTProtocol

/// The bytes of a node's state file: its id and the nodes it knew, so that a restart
/// rejoins through them. "WSDHT2", the id (20 bytes), how many IPv4 nodes (2 bytes,
/// big-endian), those nodes in compact form (26 bytes each), then IPv6 nodes (38 bytes
/// each, BEP 32) to the end. "WSDHT1" files (id, then IPv4 nodes only) are still read.
enum DHTStateFile {
    /// Nodes kept per address family at most.
    static let maxNodesPerFamily = 200
    static let maxSize = 6 + 20 + 2 + maxNodesPerFamily * (NodeInfo.compactSize(.ipv4) + NodeInfo.compactSize(.ipv6))

    static func encode(id: NodeID, nodes: [NodeInfo]) -> [UInt8] {
        let v4 = nodes.filter { $0.endpoint.ip.family == .ipv4 }.prefix(maxNodesPerFamily)
        let v6 = nodes.filter { $0.endpoint.ip.family == .ipv6 }.prefix(maxNodesPerFamily)
        var bytes = Array("WSDHT2".utf8) + id.bytes + [UInt8(v4.count >> 8), UInt8(v4.count & 0xff)]
        for n in v4 { bytes += n.compact }
        for n in v6 { bytes += n.compact }
        return bytes
    }

    /// The id and nodes, or nil when `bytes` are not a state file. Entries that do not
    /// decode (a port 0, say) are skipped.
    static func decode(_ bytes: ArraySlice<UInt8>) -> (id: NodeID, nodes: [NodeInfo])? {
        guard bytes.count >= 26, bytes.count <= maxSize, let id = NodeID(bytes: bytes.dropFirst(6).prefix(20)) else { return nil }
        let magic = Array(bytes.prefix(6))
        let rest = bytes.dropFirst(26)
        if magic == Array("WSDHT1".utf8) {
            guard rest.count % 26 == 0 else { return nil }
            return (id, nodes(rest, size: 26))
        }
        guard magic == Array("WSDHT2".utf8), rest.count >= 2 else { return nil }
        let v4Count = Int(rest[rest.startIndex]) << 8 | Int(rest[rest.startIndex + 1])
        let v4Bytes = v4Count * 26
        let body = rest.dropFirst(2)
        guard v4Count <= maxNodesPerFamily, body.count >= v4Bytes, (body.count - v4Bytes) % 38 == 0 else { return nil }
        return (id, nodes(body.prefix(v4Bytes), size: 26) + nodes(body.dropFirst(v4Bytes), size: 38))
    }

    private static func nodes(_ bytes: ArraySlice<UInt8>, size: Int) -> [NodeInfo] {
        stride(from: bytes.startIndex, to: bytes.endIndex, by: size).compactMap { NodeInfo(compact: bytes[$0..<($0 + size)]) }
    }
}
