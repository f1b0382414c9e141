import Bencode
import Hashing
import Signing
import Testing
@testable import DHTProtocol

private func hex(_ s: String) -> [UInt8] { HexCoding.decode(s) ?? [] }

/// BEP 44's test vectors (the BEP's "private key" is an expanded key, so its signatures
/// are checked by verification, and signing is checked by round trips).
private let bepKey = "77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548"
private let bepSig = "305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01"
private let bepSaltSig = "6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17ddf9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08"
private let hello = BValue.string("Hello World!")

@Suite struct DHTItemTests {
    @Test func signedBufferIsTheBencodedSaltSeqAndValue() {
        let v = hello.encoded()
        #expect(MutableItem.signedBuffer(salt: [], seq: 1, encodedValue: v) == bytes("3:seqi1e1:v12:Hello World!"))
        #expect(MutableItem.signedBuffer(salt: bytes("foobar"), seq: 1, encodedValue: v) == bytes("4:salt6:foobar3:seqi1e1:v12:Hello World!"))
        #expect(MutableItem.signedBuffer(salt: [], seq: -3, encodedValue: BValue.integer(7).encoded()) == bytes("3:seqi-3e1:vi7e"))
    }

    @Test func bep44MutableVectorWithoutSalt() throws {
        let key = try Ed25519PublicKey(bytes: hex(bepKey))
        let item = try MutableItem(publicKey: key, salt: [], seq: 1, value: hello, signature: hex(bepSig))
        #expect(item.target.hex == "4a533d47ec9c7d95b1ad75f576cffc641853b750")
    }

    @Test func bep44MutableVectorWithSalt() throws {
        let key = try Ed25519PublicKey(bytes: hex(bepKey))
        let item = try MutableItem(publicKey: key, salt: bytes("foobar"), seq: 1, value: hello, signature: hex(bepSaltSig))
        #expect(item.target.hex == "411eba73b6f087ca51a3795d9c8c938d365e32c1")
    }

    @Test func bep44SignaturesDoNotCrossOver() throws {
        let key = try Ed25519PublicKey(bytes: hex(bepKey))
        // The salted signature does not cover the unsalted item, nor the other seq, nor another value.
        #expect(throws: DHTItemError.invalidSignature) { try MutableItem(publicKey: key, salt: [], seq: 1, value: hello, signature: hex(bepSaltSig)) }
        #expect(throws: DHTItemError.invalidSignature) { try MutableItem(publicKey: key, salt: [], seq: 2, value: hello, signature: hex(bepSig)) }
        #expect(throws: DHTItemError.invalidSignature) {
            try MutableItem(publicKey: key, salt: [], seq: 1, value: .string("Hello World?"), signature: hex(bepSig))
        }
    }

    @Test func bep44ImmutableVector() throws {
        #expect(try ImmutableItem(value: hello).target.hex == "e5f96f6f38320f0f33959cb4d3d656452117aadb")
    }

    /// BEP 46's targets: SHA-1 of the key, and of key ‖ salt.
    @Test func bep46Targets() throws {
        let key = try Ed25519PublicKey(bytes: hex("8543d3e6115f0f98c944077a4493dcd543e49c739fd998550a1f614ab36ed63e"))
        #expect(MutableItem.target(publicKey: key).hex == "cc3f9d90b572172053626f9980ce261a850d050b")
        #expect(MutableItem.target(publicKey: key, salt: hex("6e")).hex == "59ee7c2cb9b4f7eb1986ee2d18fd2fdb8a56554f")
    }

    @Test func signedItemsVerifyAsReceived() throws {
        let key = try Ed25519PrivateKey.generate()
        let value = BValue.dictionary(BDictionary([("ih", .bytes([UInt8](repeating: 7, count: 20)))]))
        for salt in [[], bytes("foobar")] {
            let item = try MutableItem(signing: value, seq: 42, salt: salt, with: key)
            let received = try MutableItem(publicKey: item.publicKey, salt: salt, seq: 42, value: value, signature: item.signature)
            #expect(received == item)
            #expect(item.target == MutableItem.target(publicKey: key.publicKey, salt: salt))
        }
    }

    @Test func limitsAreBEP44s() throws {
        let key = try Ed25519PrivateKey.generate()
        let largest = BValue.bytes([UInt8](repeating: 0x61, count: 995))  // "995:" + 995 bytes = 999
        #expect(largest.encoded().count == 999)
        _ = try ImmutableItem(value: largest)
        let fits = BValue.bytes([UInt8](repeating: 0x61, count: 996))  // exactly 1000
        _ = try MutableItem(signing: fits, seq: 1, with: key)
        let tooBig = BValue.bytes([UInt8](repeating: 0x61, count: 997))  // 1001
        #expect(throws: DHTItemError.valueTooLarge(size: 1001)) { try ImmutableItem(value: tooBig) }
        #expect(throws: DHTItemError.valueTooLarge(size: 1001)) { try MutableItem(signing: tooBig, seq: 1, with: key) }
        _ = try MutableItem(signing: hello, seq: 1, salt: [UInt8](repeating: 1, count: 64), with: key)
        #expect(throws: DHTItemError.saltTooLarge(size: 65)) { try MutableItem(signing: hello, seq: 1, salt: [UInt8](repeating: 1, count: 65), with: key) }
        #expect(DHTItemError.valueTooLarge(size: 1001).code.rawValue == 205)
        #expect(DHTItemError.invalidSignature.code.rawValue == 206)
        #expect(DHTItemError.saltTooLarge(size: 65).code.rawValue == 207)
        #expect(DHTItemError.casMismatch(expected: 1, stored: 2).code.rawValue == 301)
        #expect(DHTItemError.sequenceNotNewer(seq: 1, stored: 2).code.rawValue == 302)
    }
}
