import Hashing
import Testing
@testable import Signing

private func hex(_ s: String) -> [UInt8] { HexCoding.decode(s) ?? [] }

@Suite struct Ed25519Tests {
    /// RFC 8032 section 7.1, TEST 1 and TEST 2: libcrypto's signing is the standard's.
    @Test(arguments: [
        ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
         "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
         "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
        ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
         "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
         "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ])
    func rfc8032Vectors(seed: String, publicKey: String, message: String, signature: String) throws {
        let key = try Ed25519PrivateKey(seed: hex(seed))
        #expect(key.publicKey.bytes == hex(publicKey))
        #expect(try key.signature(for: hex(message)) == hex(signature))
        #expect(key.publicKey.isValidSignature(hex(signature), for: hex(message)))
    }

    @Test func aFlippedBitAnywhereFailsVerification() throws {
        let key = try Ed25519PrivateKey.generate()
        let message = Array("Hello World!".utf8)
        let sig = try key.signature(for: message)
        #expect(key.publicKey.isValidSignature(sig, for: message))
        var badSig = sig
        badSig[10] ^= 1
        #expect(!key.publicKey.isValidSignature(badSig, for: message))
        var badMessage = message
        badMessage[0] ^= 1
        #expect(!key.publicKey.isValidSignature(sig, for: badMessage))
        #expect(!key.publicKey.isValidSignature(Array(sig.prefix(63)), for: message))
        let other = try Ed25519PrivateKey.generate()
        #expect(!other.publicKey.isValidSignature(sig, for: message))
    }

    @Test func generatedKeysDiffer() throws {
        #expect(try Ed25519PrivateKey.generate().seed != Ed25519PrivateKey.generate().seed)
    }

    @Test func wrongLengthsAreRefused() {
        #expect(throws: SigningError.wrongSeedLength(31)) { try Ed25519PrivateKey(seed: [UInt8](repeating: 1, count: 31)) }
        #expect(throws: SigningError.wrongPublicKeyLength(64)) { try Ed25519PublicKey(bytes: [UInt8](repeating: 1, count: 64)) }
    }

    @Test func pemRoundTripsAsPKCS8() throws {
        let key = try Ed25519PrivateKey(seed: hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
        let pem = try key.pemEncoded()
        let text = String(decoding: pem, as: UTF8.self)
        #expect(text.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        #expect(text.hasSuffix("-----END PRIVATE KEY-----\n"))
        #expect(try Ed25519PrivateKey(pem: pem).seed == key.seed)
    }

    /// What `openssl genpkey -algorithm ed25519` writes (RFC 8410 section 10.3's example key).
    @Test func readsOpenSSLsOwnPEM() throws {
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n"
        let key = try Ed25519PrivateKey(pem: Array(pem.utf8))
        #expect(key.seed == hex("d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842"))
        #expect(key.publicKey.bytes == hex("19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1"))
    }

    @Test func otherTextAndOtherKeysAreRefused() {
        #expect(throws: SigningError.notAPrivateKey) { try Ed25519PrivateKey(pem: Array("hello".utf8)) }
        #expect(throws: SigningError.notAPrivateKey) { try Ed25519PrivateKey(pem: []) }
        #expect(throws: SigningError.keyTooLarge(size: 5000, limit: 4096)) { try Ed25519PrivateKey(pem: [UInt8](repeating: 0x41, count: 5000)) }
        // An X25519 key (RFC 8410 section 10.3 style, OID 1.3.101.110) is a key, but not for signing.
        let x25519 = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VuBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n"
        #expect(throws: SigningError.notEd25519) { try Ed25519PrivateKey(pem: Array(x25519.utf8)) }
    }
}
