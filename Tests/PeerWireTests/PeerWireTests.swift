import NIOCore
import NIOTestUtils
import Testing
import Hashing
@testable import PeerWire

/// Bytes written by hand from BEP 3/6/10/52, not with the codec under test.
private func frame(_ id: UInt8, _ payload: [UInt8] = []) -> [UInt8] {
    let n = UInt32(payload.count + 1)
    return [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff), id] + payload
}
private func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
private let handshakeBytes: [UInt8] = [19] + Array("BitTorrent protocol".utf8) + [0, 0, 0, 0, 0, 0x10, 0, 0x05]
    + [UInt8](repeating: 0xaa, count: 20) + Array("-LT2080-123456789012".utf8)

private func decodeAll(_ bytes: [UInt8], handshake: Bool = true) throws -> [PeerWireFrame] {
    var decoder = PeerWireDecoder(expectHandshake: handshake)
    var buffer = ByteBuffer(bytes: bytes)
    var out: [PeerWireFrame] = []
    while let f = try decoder.decode(buffer: &buffer) { out.append(f) }
    return out
}

@Suite struct Decoding {
    @Test func handshakeThenMessages() throws {
        let root = Digests.sha256([1])
        let stream = handshakeBytes + [0, 0, 0, 0] + frame(2) + frame(6, be32(3) + be32(16_384) + be32(16_384))
            + frame(14) + frame(21, root.bytes + be32(2) + be32(0) + be32(16) + be32(3))
        let frames = try decodeAll(stream)
        guard case .handshake(let h) = frames[0] else { Issue.record("no handshake"); return }
        #expect(h.reserved.extensionProtocol && h.reserved.fast && h.reserved.dht && !h.reserved.v2Upgrade)
        #expect(h.infoHash == [UInt8](repeating: 0xaa, count: 20))
        #expect(Array(frames.dropFirst()) == [
            .message(.keepAlive), .message(.interested),
            .message(.request(BlockRequest(piece: 3, begin: 16_384, length: 16_384))), .message(.haveAll),
            .message(.hashRequest(HashRequest(piecesRoot: root, baseLayer: 2, index: 0, length: 16, proofLayers: 3))),
        ])
    }

    @Test func dripFedAndBatchedInputDecodeTheSame() throws {
        let block = [UInt8](repeating: 7, count: 100)
        let stream = frame(7, be32(1) + be32(0) + block) + frame(20, [0] + Array("d1:md11:ut_metadatai2eee".utf8)) + frame(0) + frame(99, [1, 2])
        let expected: [PeerWireFrame] = [
            .message(.piece(piece: 1, begin: 0, block: ByteBuffer(bytes: block))),
            .message(.extended(id: 0, payload: ByteBuffer(bytes: Array("d1:md11:ut_metadatai2eee".utf8)))),
            .message(.choke),
            .message(.unknown(id: 99, payload: ByteBuffer(bytes: [1, 2]))),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [(ByteBuffer(bytes: stream), expected)],
            decoderFactory: { PeerWireDecoder(expectHandshake: false) })
    }

    @Test func everyMessageRoundTripsThroughTheEncoder() throws {
        let root = Digests.sha256([2])
        let h = HashRequest(piecesRoot: root, baseLayer: 0, index: 4, length: 4, proofLayers: 5)
        let r = BlockRequest(piece: 9, begin: 32_768, length: 100)
        let messages: [PeerMessage] = [
            .keepAlive, .choke, .unchoke, .interested, .notInterested, .have(7), .bitfield(ByteBuffer(bytes: [0xff, 0x80])),
            .request(r), .piece(piece: 1, begin: 2, block: ByteBuffer(bytes: [1, 2, 3])), .cancel(r), .port(6881),
            .suggestPiece(3), .haveAll, .haveNone, .rejectRequest(r), .allowedFast(4),
            .extended(id: 2, payload: ByteBuffer(bytes: [0x64, 0x65])), .hashRequest(h),
            .hashes(h, hashes: ByteBuffer(bytes: [UInt8](repeating: 3, count: 64))), .hashReject(h),
        ]
        var buffer = ByteBuffer()
        for m in messages { m.encode(into: &buffer) }
        let decoded = try decodeAll(Array(buffer: buffer), handshake: false)
        #expect(decoded == messages.map(PeerWireFrame.message))
    }

    @Test(arguments: [
        [0x16, 0x03, 0x01],                       // TLS
        Array("GET / HTTP/1.1".utf8),             // HTTP
        [0x8f, 0x21, 0x4a],                       // MSE: starts with a random DH key
        [19] + Array("BitTorrent protocoX".utf8), // almost
    ])
    func anythingButAPlaintextHandshakeIsRefusedFromItsFirstBytes(_ start: [UInt8]) {
        #expect(throws: PeerWireError.notBitTorrent) { try decodeAll(start) }
    }

    @Test func lengthsAreBoundedBeforeBuffering() {
        #expect(throws: PeerWireError.messageTooLong(length: 0xffff_ffff, limit: PeerWireDecoder.defaultMaxMessageLength)) {
            try decodeAll([0xff, 0xff, 0xff, 0xff, 7], handshake: false)
        }
    }

    @Test(arguments: [frame(2, [0]), frame(4), frame(6, be32(1)), frame(9, [1]), frame(21, [0]), frame(22, [UInt8](repeating: 0, count: 50)), frame(20)])
    func fixedSizeMessagesMustHaveTheirSize(_ bytes: [UInt8]) {
        #expect(throws: PeerWireError.self) { try decodeAll(bytes, handshake: false) }
    }

    @Test func everyTruncationWaitsForMoreBytes() throws {
        let stream = handshakeBytes + frame(6, be32(3) + be32(0) + be32(16_384))
        for n in 0..<stream.count {
            let frames = try decodeAll(Array(stream.prefix(n)))
            #expect(frames.count == (n >= 68 ? 1 : 0))
        }
    }
}

@Suite struct ExtensionMessages {
    @Test func handshakeRoundTripsAndIgnoresJunk() throws {
        var h = ExtensionHandshake()
        h.messages = ["ut_metadata": 2, "upload_only": 3]
        h.metadataSize = 31_337
        h.client = "webseed"
        h.requestQueue = 250
        h.yourIP = [127, 0, 0, 1]
        h.uploadOnly = true
        #expect(try ExtensionHandshake(decoding: h.encode()) == h)
        let odd = try ExtensionHandshake(decoding: Array("d1:md11:ut_metadatai999e6:ut_pexi1ee13:metadata_sizei-5e6:yourip3:abce".utf8))
        #expect(odd.messages == ["ut_pex": 1])
        #expect(odd.metadataSize == nil && odd.yourIP == nil)
    }

    @Test func metadataMessagesFollowBEP9() throws {
        let data = MetadataMessage.data(piece: 1, totalSize: 20_000, payload: [1, 2, 3])
        let header = Array("d8:msg_typei1e5:piecei1e10:total_sizei20000ee".utf8)
        #expect(data.encode() == header + [1, 2, 3])
        #expect(try MetadataMessage.decode(data.encode()) == data)
        #expect(try MetadataMessage.decode(MetadataMessage.reject(piece: 3).encode()) == .reject(piece: 3))
        #expect(try MetadataMessage.decode(Array("d8:msg_typei9e5:piecei0ee".utf8)) == nil)
        #expect(throws: (any Error).self) { try MetadataMessage.decode(Array("d8:msg_type".utf8)) }
    }
}
