import NIOCore

/// The 68-byte BitTorrent handshake: `0x13 "BitTorrent protocol"`, reserved[8], info hash[20], peer id[20].
public struct Handshake: Sendable, Equatable {
    public static let protocolHeader: [UInt8] = [19] + Array("BitTorrent protocol".utf8)
    public static let length = 68

    public var reserved: Reserved
    /// v1 info hash, or the first 20 bytes of the v2 info hash.
    public var infoHash: [UInt8]
    public var peerID: [UInt8]

    public init(reserved: Reserved, infoHash: [UInt8], peerID: [UInt8]) {
        precondition(infoHash.count == 20 && peerID.count == 20)
        self.reserved = reserved
        self.infoHash = infoHash
        self.peerID = peerID
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeBytes(Handshake.protocolHeader)
        buffer.writeBytes(reserved.bytes)
        buffer.writeBytes(infoHash)
        buffer.writeBytes(peerID)
    }
}

/// The reserved bits, grouped by the BEP that defines them.
public struct Reserved: Sendable, Equatable {
    public var bytes: [UInt8]

    public init(bytes: [UInt8] = [UInt8](repeating: 0, count: 8)) {
        precondition(bytes.count == 8)
        self.bytes = bytes
    }

    private func bit(_ byte: Int, _ mask: UInt8) -> Bool { bytes[byte] & mask != 0 }
    private mutating func set(_ byte: Int, _ mask: UInt8, _ on: Bool) {
        if on { bytes[byte] |= mask } else { bytes[byte] &= ~mask }
    }

    /// BEP 10 extension protocol.
    public var extensionProtocol: Bool { get { bit(5, 0x10) } set { set(5, 0x10, newValue) } }
    /// BEP 5: the peer runs a DHT node (and may send PORT).
    public var dht: Bool { get { bit(7, 0x01) } set { set(7, 0x01, newValue) } }
    /// BEP 6 fast extension.
    public var fast: Bool { get { bit(7, 0x04) } set { set(7, 0x04, newValue) } }
    /// BEP 52: a peer connecting to a hybrid torrent with the v1 hash can switch to v2.
    public var v2Upgrade: Bool { get { bit(7, 0x10) } set { set(7, 0x10, newValue) } }
}
