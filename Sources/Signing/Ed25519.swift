import CLibCrypto

/// Ed25519 (RFC 8032) over libcrypto's `EVP_PKEY_ED25519`: the one place webseed signs
/// and verifies. Keys are plain bytes (a 32-byte seed, a 32-byte public key); each call
/// builds its short-lived `EVP_PKEY` and frees it, so the values are `Sendable` and
/// carry no C state.
public enum Ed25519 {
    public static let publicKeyLength = 32
    public static let seedLength = 32
    public static let signatureLength = 64
}

/// Why a key could not be made, read or used. One line each.
public enum SigningError: Error, Equatable, Sendable, CustomStringConvertible {
    case wrongSeedLength(Int)
    case wrongPublicKeyLength(Int)
    /// The text is not a PEM private key libcrypto can read (or is encrypted).
    case notAPrivateKey
    /// A readable key of another algorithm (RSA, EC, …).
    case notEd25519
    case keyTooLarge(size: Int, limit: Int)
    /// libcrypto failed where it should not (out of memory, no entropy).
    case libcrypto(String)

    public var description: String {
        switch self {
        case .wrongSeedLength(let n): "an Ed25519 private key is 32 bytes, not \(n)"
        case .wrongPublicKeyLength(let n): "an Ed25519 public key is 32 bytes, not \(n)"
        case .notAPrivateKey: "not an unencrypted PEM private key (expected '-----BEGIN PRIVATE KEY-----')"
        case .notEd25519: "the private key is not an Ed25519 key"
        case .keyTooLarge(let size, let limit): "a key file of \(size) bytes is larger than the \(limit)-byte limit"
        case .libcrypto(let what): "libcrypto failed: \(what)"
        }
    }
}

/// A public key: 32 bytes, checked only for length (a key that is not a curve point
/// simply verifies nothing).
public struct Ed25519PublicKey: Hashable, Sendable {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws(SigningError) {
        guard bytes.count == Ed25519.publicKeyLength else { throw .wrongPublicKeyLength(bytes.count) }
        self.bytes = bytes
    }

    /// Whether `signature` is this key's signature of `message`. Any malformed input is
    /// simply false.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        guard signature.count == Ed25519.signatureLength else { return false }
        let key = bytes.withUnsafeBufferPointer {
            EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, $0.baseAddress, $0.count)
        }
        guard let key else { ERR_clear_error(); return false }
        defer { EVP_PKEY_free(key) }
        guard let ctx = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestVerifyInit(ctx, nil, nil, nil, key) == 1 else { ERR_clear_error(); return false }
        let ok = signature.withUnsafeBufferPointer { sig in
            message.withUnsafeBufferPointer { msg in
                EVP_DigestVerify(ctx, sig.baseAddress, sig.count, msg.baseAddress, msg.count)
            }
        }
        if ok != 1 { ERR_clear_error() }
        return ok == 1
    }
}

/// A private key, held as its 32-byte seed (RFC 8032's private key; libtorrent's
/// 64-byte "expanded" key is SHA-512 of it, clamped, and is not accepted here).
public struct Ed25519PrivateKey: Sendable {
    public let seed: [UInt8]
    public let publicKey: Ed25519PublicKey

    public init(seed: [UInt8]) throws(SigningError) {
        guard seed.count == Ed25519.seedLength else { throw .wrongSeedLength(seed.count) }
        let key = try Self.evpKey(seed)
        defer { EVP_PKEY_free(key) }
        var raw = [UInt8](repeating: 0, count: Ed25519.publicKeyLength)
        var length = raw.count
        guard EVP_PKEY_get_raw_public_key(key, &raw, &length) == 1, length == Ed25519.publicKeyLength else {
            ERR_clear_error()
            throw .libcrypto("EVP_PKEY_get_raw_public_key")
        }
        self.seed = seed
        publicKey = try Ed25519PublicKey(bytes: raw)
    }

    /// A new key from libcrypto's random generator.
    public static func generate() throws(SigningError) -> Ed25519PrivateKey {
        guard let ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nil) else { throw .libcrypto("EVP_PKEY_CTX_new_id") }
        defer { EVP_PKEY_CTX_free(ctx) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(ctx) == 1, EVP_PKEY_keygen(ctx, &key) == 1, let key else {
            ERR_clear_error()
            throw .libcrypto("EVP_PKEY_keygen")
        }
        defer { EVP_PKEY_free(key) }
        return try Ed25519PrivateKey(seed: try rawSeed(of: key))
    }

    /// The 64-byte signature of `message` (Ed25519 is deterministic: same key and
    /// message, same signature).
    public func signature(for message: [UInt8]) throws(SigningError) -> [UInt8] {
        let key = try Self.evpKey(seed)
        defer { EVP_PKEY_free(key) }
        guard let ctx = EVP_MD_CTX_new() else { throw .libcrypto("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestSignInit(ctx, nil, nil, nil, key) == 1 else { ERR_clear_error(); throw .libcrypto("EVP_DigestSignInit") }
        var out = [UInt8](repeating: 0, count: Ed25519.signatureLength)
        var length = out.count
        let ok = message.withUnsafeBufferPointer { EVP_DigestSign(ctx, &out, &length, $0.baseAddress, $0.count) }
        guard ok == 1, length == Ed25519.signatureLength else { ERR_clear_error(); throw .libcrypto("EVP_DigestSign") }
        return out
    }

    // MARK: PEM (PKCS#8)

    /// Largest PEM text read: an Ed25519 PKCS#8 key is 119 bytes of PEM; room for
    /// line-ending variants and the optional public key, not for anything else.
    public static let maxPEMSize = 4_096

    /// The key as unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), the form
    /// `openssl genpkey -algorithm ed25519` writes and `openssl pkey` reads.
    public func pemEncoded() throws(SigningError) -> [UInt8] {
        let key = try Self.evpKey(seed)
        defer { EVP_PKEY_free(key) }
        guard let bio = BIO_new(BIO_s_mem()) else { throw .libcrypto("BIO_new") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PrivateKey(bio, key, nil, nil, 0, nil, nil) == 1 else {
            ERR_clear_error()
            throw .libcrypto("PEM_write_bio_PrivateKey")
        }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 512)
        while true {
            let n = chunk.withUnsafeMutableBytes { BIO_read(bio, $0.baseAddress, Int32($0.count)) }
            if n <= 0 { break }
            out += chunk.prefix(Int(n))
        }
        return out
    }

    /// Reads an unencrypted PKCS#8 PEM Ed25519 key. An encrypted key is refused, never
    /// prompted for: nothing here reads the terminal.
    public init(pem: [UInt8]) throws(SigningError) {
        guard pem.count <= Self.maxPEMSize else { throw .keyTooLarge(size: pem.count, limit: Self.maxPEMSize) }
        let parsed: OpaquePointer? = pem.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            // A passphrase callback that gives none: an encrypted key fails instead of prompting.
            return PEM_read_bio_PrivateKey(bio, nil, { _, _, _, _ in 0 }, nil)
        }
        guard let key = parsed else { ERR_clear_error(); throw .notAPrivateKey }
        defer { EVP_PKEY_free(key) }
        guard EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 else { throw .notEd25519 }
        try self.init(seed: try Self.rawSeed(of: key))
    }

    private static func evpKey(_ seed: [UInt8]) throws(SigningError) -> OpaquePointer {
        let key = seed.withUnsafeBufferPointer { EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, $0.baseAddress, $0.count) }
        guard let key else { ERR_clear_error(); throw .libcrypto("EVP_PKEY_new_raw_private_key") }
        return key
    }

    private static func rawSeed(of key: OpaquePointer) throws(SigningError) -> [UInt8] {
        var seed = [UInt8](repeating: 0, count: Ed25519.seedLength)
        var length = seed.count
        guard EVP_PKEY_get_raw_private_key(key, &seed, &length) == 1, length == Ed25519.seedLength else {
            ERR_clear_error()
            throw .libcrypto("EVP_PKEY_get_raw_private_key")
        }
        return seed
    }
}
