import Testing
import Hashing
import Merkle

@Suite struct HashProofs {
    /// 10 pieces of 64 KiB = 40 blocks; root height 6; piece layer at height 2 (PROTOCOL.md §2.7).
    let tree = MerkleTree(leaves: (0..<40).map { Digests.sha256([UInt8($0)]) })

    @Test func workedExamplesFromTheProtocolDigest() throws {
        #expect(tree.height == 6)
        let full = try #require(tree.hashes(baseLayer: 2, index: 0, length: 16, proofLayers: 3))
        #expect(full.count == 16)
        #expect(Array(full[10...]) == Array(repeating: MerkleTree.pad(2), count: 6))
        let half = try #require(tree.hashes(baseLayer: 2, index: 8, length: 8, proofLayers: 3))
        #expect(half.count == 9)
        #expect(half[8] == tree.node(height: 5, index: 0))  // the layer-5 node over pieces 0-7
        #expect(tree.hashes(baseLayer: 0, index: 4, length: 4, proofLayers: 5)?.count == 8)
    }

    @Test func lengthOneGetsProofLayersPlusOneUncles() {
        #expect(tree.hashes(baseLayer: 0, index: 39, length: 1, proofLayers: 5)?.count == 7)
    }

    @Test(arguments: [(0, 4, 4, 5), (0, 5, 4, 5), (2, 8, 5, 3), (0, 32, 8, 5), (0, 39, 1, 5), (2, 0, 16, 3)])
    func everyAnswerRebuildsTheRoot(_ base: Int, _ index: Int, _ length: Int, _ proof: Int) throws {
        let hashes = try #require(tree.hashes(baseLayer: base, index: index, length: length, proofLayers: proof))
        // Rebuild: hash the base range up to its subtree root, then fold in the uncles.
        let h = SHA256Hasher()
        let k = length == 1 ? 0 : Int.bitWidth - (length - 1).leadingZeroBitCount
        let start = (index >> k) << k
        var layer = (start..<(start + (1 << k))).map { i in
            (index..<(index + length)).contains(i) ? hashes[i - index] : tree.node(height: base, index: i)
        }
        while layer.count > 1 { layer = stride(from: 0, to: layer.count, by: 2).map { h.parent(layer[$0], layer[$0 + 1]) } }
        var node = layer[0]
        var position = index >> k
        for uncle in hashes[length...] {
            node = position & 1 == 0 ? h.parent(node, uncle) : h.parent(uncle, node)
            position >>= 1
        }
        #expect(Array(hashes[length...]).count == max(0, proof - k + 1))
        if base + proof + 1 == tree.height { #expect(node == tree.root) }
    }

    @Test(arguments: [(6, 0, 1, 0), (0, 0, 0, 5), (0, 0, 8193, 5), (0, 63, 2, 5), (0, 0, 2, 6), (-1, 0, 2, 1), (2, 16, 1, 3)])
    func outOfRangeRequestsAreRefused(_ base: Int, _ index: Int, _ length: Int, _ proof: Int) {
        #expect(tree.hashes(baseLayer: base, index: index, length: length, proofLayers: proof) == nil)
    }

    @Test func aOneBlockFileHasNothingToProve() {
        #expect(MerkleTree(leaves: [Digests.sha256([1])]).hashes(baseLayer: 0, index: 0, length: 1, proofLayers: 0) == nil)
    }
}
