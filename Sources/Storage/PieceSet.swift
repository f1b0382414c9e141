/// A set of piece indices as a BitTorrent bitfield (most significant bit first).
public struct PieceSet: Sendable, Equatable {
    public private(set) var bytes: [UInt8]
    public let count: Int
    public private(set) var cardinality = 0

    public init(count: Int, full: Bool = false) {
        self.count = count
        bytes = [UInt8](repeating: 0, count: (count + 7) / 8)
        if full { for i in 0..<count { insert(i) } }
    }

    /// From a bitfield; nil if its size is wrong or spare bits are set.
    public init?(bitfield: [UInt8], count: Int) {
        guard bitfield.count == (count + 7) / 8 else { return nil }
        if count % 8 != 0, let last = bitfield.last, last & (0xff >> UInt8(count % 8)) != 0 { return nil }
        self.count = count
        bytes = bitfield
        cardinality = bitfield.reduce(0) { $0 + $1.nonzeroBitCount }
    }

    public func contains(_ i: Int) -> Bool {
        i >= 0 && i < count && bytes[i >> 3] & (0x80 >> UInt8(i & 7)) != 0
    }

    public mutating func insert(_ i: Int) {
        precondition(i >= 0 && i < count)
        guard !contains(i) else { return }
        bytes[i >> 3] |= 0x80 >> UInt8(i & 7)
        cardinality += 1
    }

    public mutating func insert(_ range: Range<Int>) { for i in range { insert(i) } }

    public var isFull: Bool { cardinality == count }
    public var isEmpty: Bool { cardinality == 0 }
}
