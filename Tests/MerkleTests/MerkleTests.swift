import Testing
import Hashing
import Merkle

private func leaves(ofZeros length: Int) -> [SHA256Digest] {
    let block = [UInt8](repeating: 0, count: blockSize)
    var out: [SHA256Digest] = []
    var left = length
    while left > 0 {
        out.append(Digests.sha256(Array(block.prefix(min(left, blockSize)))))
        left -= blockSize
    }
    return out
}

@Suite struct MerkleTrees {
    @Test func padHashesMatchTheProtocolDigest() {
        #expect(MerkleTree.pad(0) == .zero)
        #expect(MerkleTree.pad(1).hex == "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b")
        #expect(MerkleTree.pad(2).hex == "db56114e00fdd4c1f85c892bf35ac9a89289aaecb1ebd0a96cde606a748b5d71")
        #expect(MerkleTree.pad(3).hex == "c78009fdf07fc56a11f122370658a353aaa542ed63e44c4bc15ff4cd105ab33c")
        #expect(MerkleTree.pad(4).hex == "536d98837f2dd165a55d5eeae91485954472d56f246df256bf3cae19352a123c")
    }

    @Test func rootsOfZeroFilesMatchLibtorrentFixtures() {
        #expect(MerkleTree(leaves: leaves(ofZeros: 64 << 10)).root.hex == "60aae9c7b428f87e0713e88229e18f0adf12cd7b22a0dd8a92bb2485eb7af242")
        #expect(MerkleTree(leaves: leaves(ofZeros: 1 << 20)).root.hex == "515ea9181744b817744ded9d2e8e9dc6a8450c0b0c52e24b5077f302ffbd9008")
    }

    @Test func aOneBlockFileIsItsOwnRoot() {
        let data = Array("hello, webseed".utf8)
        #expect(MerkleTree(leaves: [Digests.sha256(data)]).root == Digests.sha256(data))
    }

    @Test func paddingLeavesAreZeroNotHashesOfZero() {
        let l = leaves(ofZeros: 3 * blockSize)
        let h = SHA256Hasher()
        let expected = h.parent(h.parent(l[0], l[1]), h.parent(l[2], .zero))
        #expect(MerkleTree(leaves: l).root == expected)
    }

    @Test func pieceLayerHoldsOnlyRealPiecesAndRebuildsTheRoot() throws {
        // 10 pieces of 64 KiB (the protocol digest's worked example): 40 blocks, height 6.
        let tree = MerkleTree(leaves: leaves(ofZeros: 10 * (64 << 10) - 100))
        #expect(tree.height == 6)
        let layer = try #require(tree.pieceLayer(pieceLength: 64 << 10))
        #expect(layer.count == 10)
        #expect(MerkleTree.root(ofLayer: layer, height: 2) == tree.root)
        #expect(tree.node(height: 2, index: 15) == MerkleTree.pad(2))
    }

    @Test func aFileOfAtMostOnePieceHasNoLayer() {
        // Exactly one piece, and three blocks with 128 KiB pieces: a 4-leaf tree, not 8.
        #expect(MerkleTree(leaves: leaves(ofZeros: 64 << 10)).pieceLayer(pieceLength: 64 << 10) == nil)
        let three = MerkleTree(leaves: leaves(ofZeros: 3 * blockSize))
        #expect(three.pieceLayer(pieceLength: 128 << 10) == nil)
        #expect(three.height == 2)
    }

    @Test func nextPowerOfTwo() {
        #expect([1, 2, 3, 4, 5, 1000, 1024, 1025].map(MerkleTree.nextPowerOfTwo) == [1, 2, 4, 4, 8, 1024, 1024, 2048])
    }
}
