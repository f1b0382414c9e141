import Hashing

/// Answers to BEP 52 hash requests.
extension MerkleTree {
    /// The base hashes and uncle hashes for a request, or nil when it must be rejected.
    ///
    /// Lenient in what it serves (libtorrent sends `length` 1 and lengths that are not powers
    /// of two, and does not always align `index` to `length`): base hashes past the end are
    /// `pad(base)`, and the uncles are the siblings of the subtree covering the range, from
    /// layer `base + ceil(log2(length))` up to `base + proofLayers` inclusive.
    public func hashes(baseLayer: Int, index: Int, length: Int, proofLayers: Int) -> [SHA256Digest]? {
        let top = height
        guard top > 0, baseLayer >= 0, baseLayer < top, length >= 1, length <= 8192, index >= 0,
              proofLayers >= 0, proofLayers <= top - baseLayer - 1 else { return nil }
        let width = 1 << (top - baseLayer)
        guard index + length <= width else { return nil }
        var out: [SHA256Digest] = []
        out.reserveCapacity(length + proofLayers + 1)
        for i in index..<(index + length) { out.append(node(height: baseLayer, index: i)) }
        let k = length == 1 ? 0 : Int.bitWidth - (length - 1).leadingZeroBitCount  // ceil(log2(length))
        var layer = baseLayer + k
        while layer <= baseLayer + proofLayers {
            let position = index >> (layer - baseLayer)
            out.append(node(height: layer, index: position ^ 1))
            layer += 1
        }
        return out
    }
}

/// Checking hashes received from peers.
extension MerkleTree {
    /// The root that a run of `base` hashes (a power-of-two count, starting at `index` of
    /// layer `baseLayer`, `index` a multiple of the count) and its `uncles` (siblings from
    /// the run's subtree upwards, bottom first) lead to. Equal to a file's pieces root, it
    /// proves every base hash.
    public static func root(provedBy base: [SHA256Digest], baseLayer: Int, index: Int, uncles: [SHA256Digest]) -> SHA256Digest? {
        guard !base.isEmpty, base.count & (base.count - 1) == 0, index % base.count == 0 else { return nil }
        let hasher = SHA256Hasher()
        var layer = base
        var height = baseLayer
        while layer.count > 1 {
            layer = parents(of: layer, height: height, hasher: hasher)
            height += 1
        }
        var node = layer[0]
        var position = index / base.count
        for u in uncles {
            node = position & 1 == 0 ? hasher.parent(node, u) : hasher.parent(u, node)
            position >>= 1
        }
        return position == 0 ? node : nil
    }
}
