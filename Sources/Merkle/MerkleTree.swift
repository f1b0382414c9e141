import Hashing

/// Size of a v2 block: the unit of requests and the leaf of every Merkle tree.
public let blockSize = 16_384

/// A file's SHA-256 Merkle tree (BEP 52), stored as its *real* nodes only: layer `h`
/// holds `ceil(leafCount / 2^h)` nodes. Every node past the end of the file equals
/// `MerkleTree.pad(h)`, the root of a subtree made only of zero leaves, so the padded
/// tree (width `nextPowerOfTwo(leafCount)`) is implied without being stored.
public struct MerkleTree: Sendable {
    /// `layers[0]` are the leaves (block hashes); the last layer holds the root alone.
    public let layers: [[SHA256Digest]]

    /// Builds the tree over the block hashes of one non-empty file.
    public init(leaves: [SHA256Digest]) {
        precondition(!leaves.isEmpty, "an empty file has no Merkle tree")
        let hasher = SHA256Hasher()
        var layers = [leaves]
        var height = 0
        while layers[height].count > 1 {
            layers.append(MerkleTree.parents(of: layers[height], height: height, hasher: hasher))
            height += 1
        }
        self.layers = layers
    }

    /// A tree whose layers were hashed elsewhere (in parallel, by `hashParents`): layer
    /// `h` must hold `ceil(leafCount / 2^h)` nodes and the last layer the root alone.
    public init(layers: [[SHA256Digest]]) {
        precondition(!layers.isEmpty && !layers[0].isEmpty && layers[layers.count - 1].count == 1)
        precondition(layers.indices.allSatisfy { h in layers[h].count == MerkleTree.nodeCount(leafCount: layers[0].count, height: h) },
                     "a layer has the wrong number of nodes")
        self.layers = layers
    }

    public var leafCount: Int { layers[0].count }
    /// Height of the root above the leaves: log2 of the padded width.
    public var height: Int { layers.count - 1 }
    public var root: SHA256Digest { layers[height][0] }

    /// Node `index` of layer `height`, padding included.
    public func node(height h: Int, index: Int) -> SHA256Digest {
        precondition(h >= 0 && h <= height && index >= 0 && index < (1 << (height - h)))
        return index < layers[h].count ? layers[h][index] : MerkleTree.pad(h)
    }

    /// The piece layer as stored in a torrent's `piece layers`: the real nodes at the
    /// height where each node covers one piece. Nil for a file of at most one piece,
    /// which has no entry (its root is its only piece hash).
    public func pieceLayer(pieceLength: Int) -> [SHA256Digest]? {
        let h = MerkleTree.log2(pieceLength / blockSize)
        guard leafCount > (1 << h) else { return nil }
        return layers[h]
    }

    /// Padded width of a tree over `leafCount` leaves.
    public static func width(leafCount: Int) -> Int { nextPowerOfTwo(max(leafCount, 1)) }

    public static func nextPowerOfTwo(_ n: Int) -> Int {
        precondition(n >= 1)
        return n <= 1 ? 1 : 1 << (Int.bitWidth - (n - 1).leadingZeroBitCount)
    }

    /// log2 of a power of two.
    public static func log2(_ powerOfTwo: Int) -> Int {
        precondition(powerOfTwo > 0 && powerOfTwo & (powerOfTwo - 1) == 0)
        return powerOfTwo.trailingZeroBitCount
    }

    /// Root of a tree whose layer at height `h` is `nodes` (real nodes only), padding up
    /// to the next power of two with `pad(h)`. Used to check a piece layer from a torrent
    /// or a peer against the file's pieces root.
    public static func root(ofLayer nodes: [SHA256Digest], height h: Int) -> SHA256Digest {
        precondition(!nodes.isEmpty)
        return fold(nodes, height: h, width: nextPowerOfTwo(nodes.count), hasher: SHA256Hasher())
    }

    /// Hashes `layer` (at height `height`) up to the root of a subtree `width` nodes wide,
    /// with `pad` standing in for missing right-hand nodes.
    private static func fold(_ nodes: [SHA256Digest], height h: Int, width: Int, hasher: SHA256Hasher) -> SHA256Digest {
        var layer = nodes
        var height = h
        var span = 1
        while span < width {
            layer = parents(of: layer, height: height, hasher: hasher)
            height += 1
            span *= 2
        }
        return layer[0]
    }

    /// The layer above `below` (at height `height`), padding an odd last node with `pad(height)`.
    static func parents(of below: [SHA256Digest], height: Int, hasher: SHA256Hasher) -> [SHA256Digest] {
        var above = [SHA256Digest]()
        above.reserveCapacity((below.count + 1) / 2)
        var i = 0
        while i < below.count {
            let right = i + 1 < below.count ? below[i + 1] : pad(height)
            above.append(hasher.parent(below[i], right))
            i += 2
        }
        return above
    }

    /// Real nodes in layer `h` of a tree over `leafCount` leaves.
    public static func nodeCount(leafCount: Int, height h: Int) -> Int {
        (leafCount + (1 << h) - 1) >> h
    }

    /// Hashes `below` (consecutive nodes of layer `height`, starting at an even index)
    /// into their parents, `ceil(below.count / 2)` nodes written to `above`; an odd last
    /// node is paired with `pad(height)`. The building block of a tree hashed in parts.
    public static func hashParents(of below: UnsafeBufferPointer<SHA256Digest>, into above: UnsafeMutableBufferPointer<SHA256Digest>,
                                   height: Int, hasher: SHA256Hasher) {
        precondition(above.count >= (below.count + 1) / 2)
        var i = 0
        while i < below.count {
            let right = i + 1 < below.count ? below[i + 1] : pad(height)
            above[i / 2] = hasher.parent(below[i], right)
            i += 2
        }
    }

    /// Root of a subtree of height `h` made only of zero leaves: `pad(0)` is 32 zero
    /// bytes and `pad(h+1) = SHA-256(pad(h) ‖ pad(h))`.
    public static func pad(_ h: Int) -> SHA256Digest {
        precondition(h >= 0 && h < padTable.count)
        return padTable[h]
    }

    private static let padTable: [SHA256Digest] = {
        let hasher = SHA256Hasher()
        var table = [SHA256Digest.zero]
        for _ in 0..<63 { table.append(hasher.parent(table[table.count - 1], table[table.count - 1])) }
        return table
    }()
}
