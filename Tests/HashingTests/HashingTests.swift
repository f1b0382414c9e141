import Testing
import Hashing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct Hashing {
    @Test func sha256OfABlockOfZeros() {
        let zeros = [UInt8](repeating: 0, count: 16_384)
        #expect(Digests.sha256(zeros).hex == "4fe7b59af6de3b665b67788cc2f99892ab827efae3a467342b3bb4e3bc8e5bfe")
    }

    @Test func knownAnswers() {
        #expect(Digests.sha256(Array("abc".utf8)).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Digests.sha1(Array("abc".utf8)).hex == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(Digests.sha256([]).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func aHasherIsReusableAndStreamsLikeOneShot() {
        let h = SHA256Hasher()
        let data = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let first = data.withUnsafeBytes { h.hash($0) }
        h.update(Array(data[0..<12_345]))
        h.update(Array(data[12_345...]))
        #expect(h.finish() == first)
        #expect(first == Digests.sha256(data))
    }

    @Test func parentHashesTheConcatenation() {
        let a = Digests.sha256(Array("a".utf8)), b = Digests.sha256(Array("b".utf8))
        #expect(SHA256Hasher().parent(a, b) == Digests.sha256(a.bytes + b.bytes))
    }

    @Test func hexAndBytesRoundTrip() throws {
        let d = Digests.sha256(Array("webseed".utf8))
        #expect(SHA256Digest(hex: d.hex) == d)
        #expect(SHA256Digest(hex: d.hex.uppercased()) == d)
        #expect(try #require(SHA256Digest(bytes: d.bytes)) == d)
        #expect(SHA256Digest(hex: "zz") == nil)
        #expect(SHA256Digest(bytes: [1, 2, 3]) == nil)
        let s = Digests.sha1(Array("webseed".utf8))
        #expect(SHA1Digest(hex: s.hex) == s)
        #expect(s.bytes.count == 20)
    }

    @Test func digestsSortByRawBytes() throws {
        let low = try #require(SHA256Digest(hex: "00" + String(repeating: "ff", count: 31)))
        let high = try #require(SHA256Digest(hex: "01" + String(repeating: "00", count: 31)))
        #expect(low < high)
    }

    @Test func blocksAreHashedOneByOneAndFedWholeToSHA1() {
        let data = (0..<(3 * 16_384 + 1_000)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let leaves = UnsafeMutableBufferPointer<SHA256Digest>.allocate(capacity: 4)
        defer { leaves.deallocate() }
        let sha1 = SHA1Hasher()
        let hashed = data.withUnsafeBytes { SHA256Hasher().hashBlocks($0, blockSize: 16_384, into: leaves, alsoFeeding: sha1) }
        #expect(hashed)
        #expect(Array(leaves) == stride(from: 0, to: data.count, by: 16_384).map { Digests.sha256(data[$0..<min($0 + 16_384, data.count)]) })
        #expect(sha1.finish() == Digests.sha1(data))
    }

    /// `create` hashes large files through a mapping; a file truncated meanwhile must be an
    /// answer (the caller reports the file as changed), not a SIGBUS that ends the process.
    @Test func aFileTruncatedUnderItsMappingIsAnAnswerNotACrash() throws {
        let file = try #require(tmpfile())
        defer { fclose(file) }
        let fd = fileno(file)
        let size = 1 << 20
        #expect(ftruncate(fd, off_t(size)) == 0)
        let start = try #require(mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0))
        try #require(start != UnsafeMutableRawPointer(bitPattern: -1))
        defer { munmap(start, size) }
        let mapping = UnsafeRawBufferPointer(start: start, count: size)
        let leaves = UnsafeMutableBufferPointer<SHA256Digest>.allocate(capacity: size / 16_384)
        defer { leaves.deallocate() }
        let sha256 = SHA256Hasher(), sha1 = SHA1Hasher()
        let zeros = Digests.sha256([UInt8](repeating: 0, count: 16_384))

        #expect(sha256.hashBlocks(mapping, blockSize: 16_384, into: leaves, alsoFeeding: sha1))
        #expect(leaves.allSatisfy { $0 == zeros })
        _ = sha1.finish()

        #expect(ftruncate(fd, 16_384) == 0)
        #expect(!sha256.hashBlocks(mapping, blockSize: 16_384, into: leaves, alsoFeeding: sha1))
        // Again: the handler stays in place and SIGBUS is not left blocked.
        #expect(!sha256.hashBlocks(mapping, blockSize: 16_384, into: leaves, alsoFeeding: nil))
        // Both hashers were reset, and what is still in the file hashes as before.
        #expect(sha1.finish() == Digests.sha1([]))
        #expect(sha256.hashBlocks(UnsafeRawBufferPointer(rebasing: mapping[0..<16_384]), blockSize: 16_384, into: leaves, alsoFeeding: nil))
        #expect(leaves[0] == zeros)
        #expect(sha256.finish() == Digests.sha256([]))
    }
}
