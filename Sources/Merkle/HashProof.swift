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
