import CLibCrypto
import CMappedHash

/// The one place webseed touches libcrypto's digest API (with CMappedHash, the C that
/// `hashBlocks` calls to hash a file mapping safely). OpenSSL picks the CPU's SHA
/// extensions (SHA-NI) at run time, which is why hashing goes through it rather than
/// a portable implementation.
///
/// A hasher owns one `EVP_MD_CTX` and is reused across many messages: re-initialising a
/// context is far cheaper than creating one per 16 KiB block. Not thread-safe; give each
/// thread its own.
public final class SHA256Hasher {
    private let ctx: OpaquePointer

    public init() {
        guard let ctx = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed: out of memory") }
        self.ctx = ctx
        reset()
    }

    deinit { EVP_MD_CTX_free(ctx) }

    public func reset() {
        guard EVP_DigestInit_ex(ctx, Algorithms.sha256, nil) == 1 else { fatalError("EVP_DigestInit_ex(SHA-256) failed") }
    }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        guard EVP_DigestUpdate(ctx, bytes.baseAddress, bytes.count) == 1 else { fatalError("EVP_DigestUpdate failed") }
    }

    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }
    public func update(_ bytes: ArraySlice<UInt8>) { bytes.withUnsafeBytes { update($0) } }

    /// Returns the digest and leaves the hasher ready for the next message.
    public func finish() -> SHA256Digest {
        var out = SHA256Digest()
        withUnsafeMutableBytes(of: &out) { raw in
            var len: UInt32 = 0
            guard EVP_DigestFinal_ex(ctx, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), &len) == 1, len == 32 else {
                fatalError("EVP_DigestFinal_ex(SHA-256) failed")
            }
        }
        reset()
        return out
    }

    /// One message in one call.
    public func hash(_ bytes: UnsafeRawBufferPointer) -> SHA256Digest {
        update(bytes)
        return finish()
    }

    /// Hashes `bytes` as consecutive blocks of `blockSize` bytes (the last may be shorter),
    /// each block's digest into `leaves` (room for one per block), and feeds every byte to
    /// `sha1` too when given one.
    ///
    /// `bytes` may be a read-only mapping of a file: if the file is truncated under it, the
    /// read's SIGBUS is caught and the answer is false, with `leaves` partly written and both
    /// hashers reset. So a file mapping can be hashed without the copy a `pread` makes.
    public func hashBlocks(_ bytes: UnsafeRawBufferPointer, blockSize: Int, into leaves: UnsafeMutableBufferPointer<SHA256Digest>,
                           alsoFeeding sha1: SHA1Hasher?) -> Bool {
        precondition(blockSize > 0 && leaves.count >= (bytes.count + blockSize - 1) / blockSize)
        guard bytes.count > 0 else { return true }
        let result = UnsafeMutableRawPointer(leaves.baseAddress!).withMemoryRebound(to: UInt8.self, capacity: leaves.count * 32) {
            webseed_hash_blocks(bytes.baseAddress, bytes.count, blockSize, $0, ctx, sha1?.ctx)
        }
        switch result {
        case 0: return true
        case -1:
            reset()
            sha1?.reset()
            return false
        default: fatalError("libcrypto failed to hash a block")
        }
    }

    /// The Merkle parent of two nodes: SHA-256(left ‖ right).
    public func parent(_ left: SHA256Digest, _ right: SHA256Digest) -> SHA256Digest {
        var pair = (left, right)
        return withUnsafeBytes(of: &pair) { hash($0) }
    }
}

/// SHA-1 for v1 piece hashes and v1 info hashes. Same rules as `SHA256Hasher`.
public final class SHA1Hasher {
    fileprivate let ctx: OpaquePointer

    public init() {
        guard let ctx = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed: out of memory") }
        self.ctx = ctx
        reset()
    }

    deinit { EVP_MD_CTX_free(ctx) }

    public func reset() {
        guard EVP_DigestInit_ex(ctx, Algorithms.sha1, nil) == 1 else { fatalError("EVP_DigestInit_ex(SHA-1) failed") }
    }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        guard EVP_DigestUpdate(ctx, bytes.baseAddress, bytes.count) == 1 else { fatalError("EVP_DigestUpdate failed") }
    }

    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }
    public func update(_ bytes: ArraySlice<UInt8>) { bytes.withUnsafeBytes { update($0) } }

    public func finish() -> SHA1Digest {
        var buffer = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))  // EVP may write up to EVP_MAX_MD_SIZE; SHA-1 writes 20
        var len: UInt32 = 0
        withUnsafeMutableBytes(of: &buffer) { raw in
            guard EVP_DigestFinal_ex(ctx, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), &len) == 1, len == 20 else {
                fatalError("EVP_DigestFinal_ex(SHA-1) failed")
            }
        }
        reset()
        return withUnsafeBytes(of: buffer) { SHA1Digest(bytes: UnsafeRawBufferPointer(rebasing: $0[0..<20]))! }
    }

    public func hash(_ bytes: UnsafeRawBufferPointer) -> SHA1Digest {
        update(bytes)
        return finish()
    }
}

/// One-shot helpers for cold paths (info hashes, tests).
public enum Digests {
    public static func sha256(_ bytes: [UInt8]) -> SHA256Digest { bytes.withUnsafeBytes { SHA256Hasher().hash($0) } }
    public static func sha256(_ bytes: ArraySlice<UInt8>) -> SHA256Digest { bytes.withUnsafeBytes { SHA256Hasher().hash($0) } }
    public static func sha1(_ bytes: [UInt8]) -> SHA1Digest { bytes.withUnsafeBytes { SHA1Hasher().hash($0) } }
    public static func sha1(_ bytes: ArraySlice<UInt8>) -> SHA1Digest { bytes.withUnsafeBytes { SHA1Hasher().hash($0) } }
}

/// Algorithm objects fetched once per process (OpenSSL 3 makes implicit fetches on every
/// init otherwise).
private enum Algorithms {
    nonisolated(unsafe) static let sha256: OpaquePointer = {
        guard let md = EVP_MD_fetch(nil, "SHA256", nil) else { fatalError("libcrypto has no SHA-256") }
        return md
    }()
    nonisolated(unsafe) static let sha1: OpaquePointer = {
        guard let md = EVP_MD_fetch(nil, "SHA1", nil) else { fatalError("libcrypto has no SHA-1") }
        return md
    }()
}
