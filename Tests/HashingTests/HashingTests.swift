import Testing
import Hashing

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
}
