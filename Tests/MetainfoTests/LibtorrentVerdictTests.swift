import Testing
import Bencode
import Hashing
@testable import Metainfo

// What libtorrent 2.0.8 (Debian's python3-libtorrent) says about hand-made torrents, each
// verdict found by building the same torrent in Python and loading it with
// `lt.torrent_info(bytes)`. The comment on each test quotes libtorrent's answer.

private let root = Digests.sha256(Array("content".utf8))
private let oneHash = BValue.bytes([UInt8](repeating: 1, count: 20))

private func torrent(_ info: [(String, BValue)]) -> [UInt8] {
    BValue.dictionary(BDictionary([("info", .dictionary(BDictionary(info)))])).encoded()
}

private func leaf(_ props: [(String, BValue)]) -> BValue {
    .dictionary(BDictionary([("", .dictionary(BDictionary(props)))]))
}

private func file(_ length: Int64, withRoot: Bool = true) -> BValue {
    leaf([("length", .integer(length))] + (withRoot ? [("pieces root", .bytes(root.bytes))] : []))
}

private func v2(name: [UInt8] = Array("site".utf8), _ tree: [([UInt8], BValue)]) -> [UInt8] {
    var t = BDictionary()
    for (k, v) in tree { t[k] = v }
    var info = BDictionary([("meta version", .integer(2)), ("piece length", .integer(16_384)), ("file tree", .dictionary(t))])
    info[Array("name".utf8)] = .bytes(name)
    return BValue.dictionary(BDictionary([("info", .dictionary(info))])).encoded()
}

private func v1Single(name: [UInt8], length: Int64 = 7, extra: [(String, BValue)] = []) -> [UInt8] {
    var info = BDictionary([("piece length", .integer(16_384)), ("length", .integer(length)),
                            ("pieces", length > 0 ? oneHash : .bytes([]))] + extra)
    info[Array("name".utf8)] = .bytes(name)
    return BValue.dictionary(BDictionary([("info", .dictionary(info))])).encoded()
}

private func v1Multi(name: [UInt8] = Array("site".utf8), _ files: [[(String, BValue)]]) -> [UInt8] {
    let total = files.reduce(Int64(0)) { sum, f in sum + (f.first { $0.0 == "length" }?.1.integer ?? 0) }
    let pieces = Int((total + 16_383) / 16_384)
    var info = BDictionary([("piece length", .integer(16_384)), ("pieces", .bytes([UInt8](repeating: 1, count: 20 * pieces))),
                            ("files", .list(files.map { .dictionary(BDictionary($0)) }))])
    info[Array("name".utf8)] = .bytes(name)
    return BValue.dictionary(BDictionary([("info", .dictionary(info))])).encoded()
}

private let nul: [UInt8] = [0]
private let rlo = Array("\u{202E}".utf8)

@Suite struct LibtorrentRefusesEmptyTorrents {
    // "invalid length of torrent"
    @Test func aV2TorrentOfOnlyEmptyFilesIsRefused() {
        #expect(throws: MetainfoError.emptyTorrent) { try Metainfo(bytes: v2([(Array("a".utf8), file(0, withRoot: false))])) }
        #expect(throws: MetainfoError.emptyTorrent) {
            try Metainfo(bytes: v2([(Array("a".utf8), file(0, withRoot: false)), (Array("b".utf8), file(0, withRoot: false))]))
        }
    }

    @Test func aV1TorrentOfZeroBytesIsRefused() {
        #expect(throws: MetainfoError.emptyTorrent) { try Metainfo(bytes: v1Single(name: Array("x".utf8), length: 0)) }
        #expect(throws: MetainfoError.emptyTorrent) {
            try Metainfo(bytes: v1Multi([[("length", .integer(0)), ("path", .list([.string("a")]))],
                                         [("length", .integer(0)), ("path", .list([.string("b")]))]]))
        }
    }

    @Test func aTorrentOfOnlySymlinksIsRefused() {
        let link = leaf([("attr", .string("l")), ("symlink path", .list([.string("b")]))])
        #expect(throws: MetainfoError.emptyTorrent) { try Metainfo(bytes: v2([(Array("a".utf8), link)])) }
    }

    @Test func anEmptyFileBesideDataLoads() throws {
        let m = try Metainfo(bytes: v2([(Array("a".utf8), file(0, withRoot: false)), (Array("b".utf8), file(7))]))
        #expect(m.totalSize == 7)
    }

    @Test func theBuilderRefusesToo() {
        #expect(throws: MetainfoError.emptyTorrent) {
            try TorrentBuilder.build(name: "s", pieceLength: 16_384, files: [HashedFile(path: ["a"], length: 0, tree: nil)], hybrid: false)
        }
    }
}

@Suite struct LibtorrentNames {
    // "missing name in torrent file": a single-file torrent's name is its file's name.
    @Test(arguments: [[0], [0, 0], Array("\u{202E}".utf8), Array("\u{200E}".utf8), Array("/".utf8), Array("\\".utf8), Array(".".utf8), Array("..".utf8), Array("\u{202E}..".utf8), []])
    func aSingleFileV1NameThatSanitizesToNothingIsRefused(_ name: [UInt8]) {
        #expect(throws: MetainfoError.emptyName) { try Metainfo(bytes: v1Single(name: name)) }
    }

    @Test func directionOverridesAndNulAreRemovedFromNames() throws {
        #expect(try Metainfo(bytes: v1Single(name: rlo + Array("a".utf8))).name == "a")
        #expect(try Metainfo(bytes: v1Single(name: Array("a".utf8) + nul + Array("b".utf8))).name == "ab")
        #expect(try Metainfo(bytes: v1Single(name: Array("a\nb".utf8))).name == "a_b")
        #expect(try Metainfo(bytes: v1Single(name: Array("a\\b".utf8))).name == "ab")
        #expect(try Metainfo(bytes: v1Single(name: Array("\u{1B}".utf8))).name == "_")
    }

    @Test(arguments: [nul, rlo, Array(".".utf8)])
    func aMultiFileTorrentWhoseNameSanitizesToNothingIsNamedByItsInfoHash(_ name: [UInt8]) throws {
        // libtorrent: name = hex SHA-1 of the info dict (v1 and v2 torrents alike).
        let v1 = try Metainfo(bytes: v1Multi(name: name, [[("length", .integer(7)), ("path", .list([.string("a")]))]]))
        #expect(v1.name == Digests.sha1(v1.infoBytes).hex)
        #expect(v1.files.map(\.path) == [["a"]])
        let v2m = try Metainfo(bytes: v2(name: name, [(Array("y".utf8), file(7)), (Array("z".utf8), file(7))]))
        #expect(v2m.name == Digests.sha1(v2m.infoBytes).hex)
    }

    @Test func aMultiFileTorrentWithAnEmptyNameIsNamedUnderscore() throws {
        let m = try Metainfo(bytes: v1Multi(name: [], [[("length", .integer(7)), ("path", .list([.string("a")]))]]))
        #expect(m.name == "_")
    }

    @Test func aV2SingleFileTorrentIsNamedByItsFile() throws {
        // libtorrent ignores `name` here: name 'a', one file 'a'.
        let m = try Metainfo(bytes: v2(name: nul, [(Array("a".utf8), file(7))]))
        #expect(m.name == "a")
        #expect(m.isSingleFile)
        let sanitized = try Metainfo(bytes: v2(name: nul, [(Array("a".utf8) + rlo + Array("b".utf8), file(7))]))
        #expect(sanitized.name == "ab" && sanitized.isSingleFile)
        #expect(sanitized.sanitizedPaths == ["ab"])
    }

    @Test(arguments: [nul, rlo, Array("\\".utf8)])
    func aV2SingleFileWhoseFileNameSanitizesToNothingIsRefused(_ key: [UInt8]) {
        #expect(throws: MetainfoError.emptyName) { try Metainfo(bytes: v2(name: Array("n".utf8), [(key, file(7))])) }
    }

    @Test func aPathComponentThatSanitizesToNothingBecomesUnderscore() throws {
        // libtorrent loads these too ('site/_' in v1).
        let m = try Metainfo(bytes: v2([(rlo, file(7)), (Array("z".utf8), file(7))]))
        #expect(Set(m.files.map(\.pathString)) == ["_", "z"])
        #expect(m.sanitizedPaths == ["_"])
        let v1 = try Metainfo(bytes: v1Multi([[("length", .integer(7)), ("path", .list([.bytes(nul)]))]]))
        #expect(v1.files.map(\.pathString) == ["_"])
    }
}

@Suite struct LibtorrentMetaVersion {
    // "the torrent contains v2 keys but does not specify meta version 2"
    @Test func aFileTreeWithoutMetaVersionIsRefused() {
        let treeOnly = torrent([("name", .string("site")), ("piece length", .integer(16_384)),
                                ("file tree", .dictionary(BDictionary([("a", file(7))])))])
        #expect(throws: MetainfoError.fileTreeWithoutMetaVersion) { try Metainfo(bytes: treeOnly) }
        let withV1 = torrent([("name", .string("site")), ("piece length", .integer(16_384)), ("length", .integer(7)), ("pieces", oneHash),
                              ("file tree", .dictionary(BDictionary([("site", file(7))])))])
        #expect(throws: MetainfoError.fileTreeWithoutMetaVersion) { try Metainfo(bytes: withV1) }
    }

    @Test func metaVersionOneIsV1() throws {
        let m = try Metainfo(bytes: torrent([("meta version", .integer(1)), ("name", .string("site")), ("piece length", .integer(16_384)),
                                             ("length", .integer(7)), ("pieces", oneHash)]))
        #expect(m.version == .v1)
    }
}

@Suite struct LibtorrentPadsAndSymlinks {
    private func withPad(path: BValue?) -> [UInt8] {
        var pad: [(String, BValue)] = [("attr", .string("p")), ("length", .integer(16_377))]
        if let path { pad.append(("path", path)) }
        return v1Multi([[("length", .integer(7)), ("path", .list([.string("a")]))], pad,
                        [("length", .integer(7)), ("path", .list([.string("b")]))]])
    }

    // "invalid 'name' of torrent (possible exploit attempt)"
    @Test func aPadWhosePathHoldsAListOrAnIntegerIsRefused() {
        #expect(throws: MetainfoError.wrongType(key: "files/path component", expected: "string", actual: "list")) {
            try Metainfo(bytes: withPad(path: .list([.string(".pad"), .list([.string("x")])])))
        }
        #expect(throws: MetainfoError.wrongType(key: "files/path component", expected: "string", actual: "integer")) {
            try Metainfo(bytes: withPad(path: .list([.string(".pad"), .integer(1)])))
        }
    }

    @Test func aPadWithAnyOtherPathLoads() throws {
        for path: BValue? in [nil, .list([]), .string(".pad"), .list([.string(".pad"), .string("16377")])] {
            let m = try Metainfo(bytes: withPad(path: path))
            #expect(m.files.map(\.pathString) == ["a", "b"])
        }
    }

    // A symlink takes no space whatever its `length`; without `symlink path` it is an empty
    // regular file. So a single-file v1 "symlink" is a torrent of 0 bytes: refused.
    @Test func aSingleFileSymlinkWithoutTargetIsRefused() {
        #expect(throws: MetainfoError.emptyTorrent) { try Metainfo(bytes: v1Single(name: Array("x".utf8), extra: [("attr", .string("l"))])) }
    }

    @Test func aV1SymlinkWithoutTargetIsAnEmptyRegularFile() throws {
        let m = try Metainfo(bytes: v1Multi([[("attr", .string("l")), ("length", .integer(7)), ("path", .list([.string("a")]))],
                                             [("length", .integer(7)), ("path", .list([.string("b")]))]]))
        #expect(m.files.map(\.length) == [0, 7])
        #expect(!m.files[0].isSymlink)
        #expect(m.totalSize == 7)
    }

    @Test func aV1SymlinkWithTargetTakesNoSpace() throws {
        let m = try Metainfo(bytes: v1Multi([[("attr", .string("l")), ("length", .integer(7)), ("path", .list([.string("a")])),
                                              ("symlink path", .list([.string("b")]))],
                                             [("length", .integer(7)), ("path", .list([.string("b")]))]]))
        #expect(m.files[0].symlinkTarget == ["b"])
        #expect(m.files[0].length == 0)
    }

    @Test func aV2SymlinkWithoutTargetIsAnEmptyRegularFile() throws {
        for props: [(String, BValue)] in [[("attr", .string("l")), ("length", .integer(7)), ("pieces root", .bytes(root.bytes))],
                                          [("attr", .string("l"))],
                                          [("attr", .string("l")), ("symlink path", .string("b"))],
                                          [("attr", .string("l")), ("symlink path", .list([]))]] {
            let m = try Metainfo(bytes: v2([(Array("a".utf8), leaf(props)), (Array("b".utf8), file(7))]))
            #expect(m.files[0].length == 0)
            #expect(!m.files[0].isSymlink)
            #expect(m.files[0].piecesRoot == nil)
        }
    }

    // "invalid 'name' of torrent (possible exploit attempt)"
    @Test func aSymlinkTargetHoldingAListIsRefused() {
        let link = leaf([("attr", .string("l")), ("symlink path", .list([.list([.string("b")])]))])
        #expect(throws: MetainfoError.self) { try Metainfo(bytes: v2([(Array("a".utf8), link), (Array("b".utf8), file(7))])) }
    }
}

/// Found by comparing the metainfo fuzzer's corpus with libtorrent: a v2 torrent's v1 file
/// list is checked against its tree even when `pieces` is missing.
@Suite struct LibtorrentV1ListWithoutPieces {
    private func withV1(_ extra: [(String, BValue)]) -> [UInt8] {
        torrent([("meta version", .integer(2)), ("name", .string("site")), ("piece length", .integer(16_384)),
                 ("file tree", .dictionary(BDictionary([("a", file(7))])))] + extra)
    }

    // "the v1 and v2 file metadata does not match"
    @Test func aFilesListThatDisagreesWithTheTreeIsRefused() {
        #expect(throws: MetainfoError.hybridMismatch("'a' is 8 bytes in v1 and 7 in v2")) {
            try Metainfo(bytes: withV1([("files", .list([.dictionary(BDictionary([("length", .integer(8)), ("path", .list([.string("a")]))]))]))]))
        }
    }

    // "invalid length of torrent"
    @Test func aFilesListWithoutLengthsIsRefused() {
        #expect(throws: MetainfoError.missingKey("files/length")) {
            try Metainfo(bytes: withV1([("files", .list([.dictionary(BDictionary([("path", .list([.string("a")]))]))]))]))
        }
    }

    @Test func aFilesListThatAgreesLoadsAsV2() throws {
        let m = try Metainfo(bytes: withV1([("files", .list([.dictionary(BDictionary([("length", .integer(7)), ("path", .list([.string("a")]))]))]))]))
        #expect(m.version == .v2)
        #expect(m.files.map(\.pathString) == ["a"])
    }
}
