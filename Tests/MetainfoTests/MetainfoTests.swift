import Testing
import Bencode
import Hashing
import Merkle
@testable import Metainfo

/// Hand-written torrents: each builds an info dict directly as bencode values, so the
/// parser is tested against what a careless or hostile creator could write.
private func torrent(info: [(String, BValue)], extra: [(String, BValue)] = []) -> [UInt8] {
    BValue.dictionary(BDictionary([("info", .dictionary(BDictionary(info)))] + extra)).encoded()
}

private func file(_ length: Int64, root: SHA256Digest? = nil) -> BValue {
    var props: [(String, BValue)] = [("length", .integer(length))]
    if let root { props.append(("pieces root", .bytes(root.bytes))) }
    return .dictionary(BDictionary([("", .dictionary(BDictionary(props)))]))
}

private let someRoot = Digests.sha256(Array("content".utf8))

private func v2(tree: [(String, BValue)], pieceLength: Int64 = 16_384, name: String = "site") -> [UInt8] {
    torrent(info: [("meta version", .integer(2)), ("name", .string(name)), ("piece length", .integer(pieceLength)),
                   ("file tree", .dictionary(BDictionary(tree)))])
}

@Suite struct ParsingHandWrittenTorrents {
    @Test func aMinimalV2TorrentLoads() throws {
        let m = try Metainfo(bytes: v2(tree: [("a.txt", file(7, root: someRoot))]))
        #expect(m.version == .v2)
        #expect(m.files == [TorrentFile(path: ["a.txt"], length: 7, piecesRoot: someRoot)])
        #expect(m.pieceCount == 1)
        #expect(m.v2InfoHash == Digests.sha256(m.infoBytes))
    }

    @Test func emptyFileNameIsRejected() {
        // What libtorrent's v2_empty_filename fixture holds (not in Debian's 2.0.11 source).
        let bytes = v2(tree: [("dir", .dictionary(BDictionary([("", .dictionary(BDictionary([("", .dictionary(BDictionary([("length", .integer(1))])))])))])))])
        #expect(throws: MetainfoError.self) { try Metainfo(bytes: bytes) }
    }

    @Test(arguments: [".", ".."])
    func dotComponentsAreRejected(_ name: String) {
        let bytes = v2(tree: [(name, .dictionary(BDictionary([("x", file(1, root: someRoot))])))])
        #expect(throws: MetainfoError.invalidPathComponent(path: name, reason: "'\(name)' component")) { try Metainfo(bytes: bytes) }
    }

    @Test func slashesNulAndBadUTF8AreSanitized() throws {
        // libtorrent's v2_invalid_filename2 kind: '/' and NUL are removed, bad UTF-8 replaced.
        var tree = BDictionary()
        tree[[0x61, 0x2f, 0x62]] = file(1, root: someRoot)           // "a/b"
        tree[[0x63, 0x00, 0x64]] = file(1, root: someRoot)           // "c\0d"
        tree[[0x82, 0x65]] = file(1, root: someRoot)                 // invalid UTF-8
        let bytes = torrent(info: [("meta version", .integer(2)), ("name", .string("s")), ("piece length", .integer(16_384)),
                                   ("file tree", .dictionary(tree))])
        let m = try Metainfo(bytes: bytes)
        #expect(Set(m.files.map(\.pathString)) == ["ab", "cd", "_e"])  // libtorrent 2.0.8's names
        #expect(m.sanitizedPaths.count == 3)
    }

    @Test func sanitizingIntoACollisionIsRejected() {
        var tree = BDictionary()
        tree[Array("a/b".utf8)] = file(1, root: someRoot)
        tree[Array("ab".utf8)] = file(1, root: someRoot)
        let bytes = torrent(info: [("meta version", .integer(2)), ("name", .string("s")), ("piece length", .integer(16_384)),
                                   ("file tree", .dictionary(tree))])
        #expect(throws: MetainfoError.duplicatePath("ab")) { try Metainfo(bytes: bytes) }
    }

    @Test func aDirectoryThatIsAlsoAFileIsRejected() {
        let both = BValue.dictionary(BDictionary([("", .dictionary(BDictionary([("length", .integer(0))]))), ("x", file(1, root: someRoot))]))
        #expect(throws: MetainfoError.fileAndDirectory(path: "a")) { try Metainfo(bytes: v2(tree: [("a", both)])) }
    }

    @Test func theTreeRootCannotBeAFile() {
        #expect(throws: MetainfoError.fileTreeRootIsFile) {
            try Metainfo(bytes: v2(tree: [("", .dictionary(BDictionary([("length", .integer(1))])))]))
        }
    }

    @Test func piecesRootIsRequiredAndChecked() {
        #expect(throws: MetainfoError.missingPiecesRoot(path: "a")) { try Metainfo(bytes: v2(tree: [("a", file(5))])) }
        #expect(throws: MetainfoError.invalidPiecesRoot(path: "a", reason: "all zeros")) {
            try Metainfo(bytes: v2(tree: [("a", file(5, root: .zero))]))
        }
        // An empty file needs none.
        #expect(throws: Never.self) { try Metainfo(bytes: v2(tree: [("a", file(0)), ("b", file(1, root: someRoot))])) }
    }

    @Test(arguments: [Int64(0), 1000, 16_383, 49_152, -16_384])
    func v2PieceLengthMustBeAPowerOfTwoOfAtLeast16KiB(_ pl: Int64) {
        #expect(throws: MetainfoError.self) { try Metainfo(bytes: v2(tree: [("a", file(1, root: someRoot))], pieceLength: pl)) }
    }

    @Test func unknownMetaVersionIsRejected() {
        let bytes = torrent(info: [("meta version", .integer(3)), ("name", .string("x")), ("piece length", .integer(16_384))])
        #expect(throws: MetainfoError.unknownVersion(3)) { try Metainfo(bytes: bytes) }
    }

    @Test func filesAreCountedAndBounded() {
        var limits = MetainfoLimits()
        limits.maxFiles = 2
        let bytes = v2(tree: [("a", file(1, root: someRoot)), ("b", file(1, root: someRoot)), ("c", file(1, root: someRoot))])
        #expect(throws: MetainfoError.tooManyFiles(limit: 2)) { try Metainfo(bytes: bytes, limits: limits) }
    }

    @Test func missingPieceLayersStillLoad() throws {
        // Like a magnet: the layer is fetched from peers later.
        let m = try Metainfo(bytes: v2(tree: [("big", file(100_000, root: someRoot))]))
        #expect(m.pieceLayers.isEmpty)
        #expect(m.pieceCount == 7)
    }

    @Test func aPieceLayerMustHashToItsRoot() {
        let layer = (0..<7).flatMap { _ in Digests.sha256([1]).bytes }
        let bytes = torrent(info: [("meta version", .integer(2)), ("name", .string("s")), ("piece length", .integer(16_384)),
                                   ("file tree", .dictionary(BDictionary([("big", file(100_000, root: someRoot))])))],
                            extra: [("piece layers", .dictionary(BDictionary([(String(decoding: [], as: UTF8.self), .integer(0))])))])
        #expect(throws: MetainfoError.self) { try Metainfo(bytes: bytes) }
        var layers = BDictionary()
        layers[someRoot.bytes] = .bytes(layer)
        let wrong = torrent(info: [("meta version", .integer(2)), ("name", .string("s")), ("piece length", .integer(16_384)),
                                   ("file tree", .dictionary(BDictionary([("big", file(100_000, root: someRoot))])))],
                            extra: [("piece layers", .dictionary(layers))])
        #expect(throws: MetainfoError.pieceLayerMismatch(path: "big")) { try Metainfo(bytes: wrong) }
    }

    @Test func nonCanonicalV2IsRejectedButV1WithUnsortedKeysLoads() throws {
        let v1 = Array("d4:infod6:lengthi3e4:name1:x12:piece lengthi16384e6:pieces20:".utf8) + [UInt8](repeating: 7, count: 20) + Array("ee".utf8)
        let m = try Metainfo(bytes: v1)
        #expect(m.version == .v1)
        #expect(m.v1InfoHash == Digests.sha1(Array(v1[7..<(v1.count - 1)])))
        let v2Unsorted = Array("d4:infod4:name1:x12:meta versioni2e12:piece lengthi16384e9:file treed1:ad0:d6:lengthi0eeeeee".utf8)
        #expect(throws: MetainfoError.self) { try Metainfo(bytes: v2Unsorted) }
    }

    @Test func garbageIsNotATorrent() {
        #expect(throws: MetainfoError.notADictionary) { try Metainfo(bytes: Array("<html>".utf8)) }
        #expect(throws: MetainfoError.missingKey("info")) { try Metainfo(bytes: Array("de".utf8)) }
    }
}

@Suite struct Building {
    private func hashed(_ path: [String], _ content: [UInt8], pieceLength: Int) -> HashedFile {
        var leaves: [SHA256Digest] = []
        var i = 0
        while i < content.count {
            leaves.append(Digests.sha256(Array(content[i..<min(i + blockSize, content.count)])))
            i += blockSize
        }
        var v1: [SHA1Digest] = []
        i = 0
        while i < content.count {
            var piece = Array(content[i..<min(i + pieceLength, content.count)])
            piece += [UInt8](repeating: 0, count: pieceLength - piece.count)
            v1.append(Digests.sha1(piece))
            i += pieceLength
        }
        return HashedFile(path: path, length: Int64(content.count), tree: content.isEmpty ? nil : MerkleTree(leaves: leaves), v1PieceHashes: v1)
    }

    @Test func filesGoInTreeOrderWithPadsAfterEveryUnalignedFile() throws {
        let files = [hashed(["a.txt"], [1], pieceLength: 16_384), hashed(["a", "x"], [2, 2], pieceLength: 16_384),
                     hashed(["a-b"], [], pieceLength: 16_384), hashed(["B"], [4, 4, 4, 4], pieceLength: 16_384)]
        let (bytes, m) = try TorrentBuilder.build(name: "tricky", pieceLength: 16_384, files: files, hybrid: true)
        #expect(m.files.map(\.pathString) == ["B", "a/x", "a-b", "a.txt"])
        #expect(m.v1Entries.map { $0.isPad ? "pad" : $0.path.joined(separator: "/") } == ["B", "pad", "a/x", "pad", "a-b", "a.txt", "pad"])
        let tailPad = try #require(m.v1Entries.last)
        #expect(tailPad.isPad && tailPad.offset == Int64(2 * 16_384 + 1) && tailPad.length == 16_383)  // after a.txt
        #expect(try Metainfo(bytes: bytes).v2InfoHash == m.v2InfoHash)
    }

    @Test func largeFilesGetAVerifiedPieceLayer() throws {
        let content = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let (_, m) = try TorrentBuilder.build(name: "s", pieceLength: 32_768, files: [hashed(["f"], content, pieceLength: 32_768)], hybrid: false)
        let root = try #require(m.files[0].piecesRoot)
        #expect(m.pieceLayers[root]?.count == 4)
        #expect(m.v1InfoHash == nil)
    }

    @Test func outsideFieldsDoNotChangeTheInfoHash() throws {
        let files = [hashed(["index.html"], Array("<h1>hi</h1>".utf8), pieceLength: 16_384)]
        let (_, plain) = try TorrentBuilder.build(name: "s", pieceLength: 16_384, files: files, hybrid: true)
        var options = TorrentOptions()
        options.trackers = ["http://127.0.0.1:1/announce", "udp://127.0.0.1:2"]
        options.webSeeds = ["http://127.0.0.1:8080/"]
        options.comment = "hello"
        options.creationDate = 1_700_000_000
        let (_, decorated) = try TorrentBuilder.build(name: "s", pieceLength: 16_384, files: files, hybrid: true, options: options)
        #expect(plain.v2InfoHash == decorated.v2InfoHash)
        #expect(decorated.trackers == [["http://127.0.0.1:1/announce"], ["udp://127.0.0.1:2"]])
        #expect(decorated.webSeeds == ["http://127.0.0.1:8080/"])
        #expect(decorated.creationDate == 1_700_000_000)
        options.isPrivate = true
        let (_, priv) = try TorrentBuilder.build(name: "s", pieceLength: 16_384, files: files, hybrid: true, options: options)
        #expect(priv.isPrivate && priv.v2InfoHash != plain.v2InfoHash)
    }

    @Test func automaticPieceLength() {
        #expect(PieceLengthRule.automatic(fileLengths: [100, 200, 0]) == 16_384)
        #expect(PieceLengthRule.automatic(fileLengths: [1 << 30]) == 1 << 20)
        #expect(PieceLengthRule.automatic(fileLengths: Array(repeating: 4_000, count: 20_000)) == 16_384)
        #expect(PieceLengthRule.automatic(fileLengths: [1 << 40]) == 16 << 20)
    }
}

@Suite struct Magnets {
    private let v2 = SHA256Digest(hex: "670137ee1b6766459216445ad06569818beae04e656f9aa6cb36db9a04a17523")!
    private let v1 = SHA1Digest(hex: "8d49b2b585e68d95e5dfd11790b40b228934fe70")!

    @Test func writesBtihThenBtmhAndReadsThemBack() throws {
        let m = MagnetLink(v1InfoHash: v1, v2InfoHash: v2, displayName: "my site", trackers: ["http://127.0.0.1:6969/announce"],
                           webSeeds: ["http://127.0.0.1:8080/"], peers: ["127.0.0.1:6881"])
        #expect(m.uri.hasPrefix("magnet:?xt=urn:btih:8d49b2b585e68d95e5dfd11790b40b228934fe70&xt=urn:btmh:1220670137ee"))
        #expect(m.uri.contains("dn=my%20site"))
        #expect(try MagnetLink(parsing: m.uri) == m)
    }

    @Test func acceptsBase32BtihAndNumberedParameters() throws {
        let b32 = SiteID.base32(v1.bytes).uppercased()
        let m = try MagnetLink(parsing: "magnet:?xt=urn:btih:\(b32)&tr.1=udp%3A%2F%2F127.0.0.1%3A1&x.pe=[::1]:6881")
        #expect(m.v1InfoHash == v1)
        #expect(m.trackers == ["udp://127.0.0.1:1"])
        #expect(m.peers == ["[::1]:6881"])
    }

    @Test(arguments: [
        ("https://example.invalid/", MagnetError.notAMagnet),
        ("magnet:?dn=x", .noInfoHash),
        ("magnet:?xt=urn:btih:1234", .malformed("urn:btih needs 40 hex or 32 base32 characters")),
        ("magnet:?xt=urn:btmh:1114aaaa", .unsupportedTopic("urn:btmh:1114aaaa")),
        ("magnet:?xt=urn:sha1:abcdef", .unsupportedTopic("urn:sha1:abcdef")),
        ("magnet:?xt=urn:btmh:1220zz", .malformed("urn:btmh:1220 needs 64 hex characters")),
        ("magnet:?xt", .malformed("parameter 'xt' has no value")),
        ("magnet:?xt=urn:btih:%zz", .malformed("bad percent-encoding in 'xt'")),
    ])
    func malformedMagnetsGetAClearError(_ text: String, _ expected: MagnetError) {
        #expect(throws: expected) { try MagnetLink(parsing: text) }
    }

    @Test func absurdlyLongMagnetsAreRefused() {
        let long = "magnet:?dn=" + String(repeating: "a", count: 10_000)
        #expect(throws: MagnetError.malformed("longer than 8192 bytes")) { try MagnetLink(parsing: long) }
    }
}

@Suite struct SiteIDs {
    @Test func fiftyTwoLowercaseCharactersThatRoundTrip() throws {
        let h = Digests.sha256(Array("site".utf8))
        let id = SiteID.encode(h)
        #expect(id.count == 52)
        #expect(id == id.lowercased())
        #expect(SiteID.decode(id) == h)
        #expect(SiteID.decode(id.uppercased()) == h)
        #expect(SiteID.decode("not-a-site-id") == nil)
    }

    @Test func rfc4648Vectors() {
        #expect(SiteID.base32(Array("foobar".utf8)) == "mzxw6ytboi")
        #expect(SiteID.base32(Array("f".utf8)) == "my")
        #expect(SiteID.base32Decode("mzxw6ytboi") == Array("foobar".utf8))
    }
}

@Suite struct UnicodeNames {
    private func file(_ name: String) -> HashedFile {
        HashedFile(path: [name], length: 1, tree: MerkleTree(leaves: [Digests.sha256(Array(name.utf8))]), v1PieceHashes: [Digests.sha1(Array(name.utf8))])
    }

    @Test func treeOrderComparesBytesNotCanonicalEquivalence() {
        let nfc = "caf\u{E9}", nfd = "cafe\u{301}"
        #expect(nfc == nfd)  // Swift's String equality: canonically equivalent
        #expect(TorrentBuilder.treeOrder([nfd], [nfc]))  // but 'e' (0x65) < 0xC3 as bytes
        #expect(!TorrentBuilder.treeOrder([nfc], [nfd]))
        #expect(TorrentBuilder.treeOrder(["a"], ["a", "b"]))
        #expect(!TorrentBuilder.treeOrder(["a", "b"], ["a", "b"]))
    }

    @Test func namesDifferingOnlyInNormalizationAreRefused() {
        #expect(throws: MetainfoError.duplicatePath("caf\u{E9}")) {
            try TorrentBuilder.build(name: "s", pieceLength: 16_384, files: [file("cafe\u{301}"), file("caf\u{E9}")], hybrid: false)
        }
    }

    @Test func similarButDifferentNamesStayDistinctKeys() throws {
        let (_, m) = try TorrentBuilder.build(name: "s", pieceLength: 16_384, files: [file("caf\u{E9}.txt"), file("cafe.txt")], hybrid: true)
        #expect(m.files.map(\.pathString) == ["cafe.txt", "caf\u{E9}.txt"])
    }
}
