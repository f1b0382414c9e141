import Foundation
import Testing
import Metainfo

/// libtorrent's own test torrents (BSD), extracted from Debian's source package by
/// Tools/fixtures into Tests/Fixtures/libtorrent (never committed). Missing fixtures fail
/// these tests rather than skipping them.
private let fixtureDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/libtorrent")

private func fixture(_ name: String) throws -> [UInt8] {
    let url = fixtureDirectory.appendingPathComponent(name + ".torrent")
    guard let data = FileManager.default.contents(atPath: url.path) else {
        Issue.record("fixture \(name).torrent is missing: run Tools/fixtures (or Tools/setup) first")
        throw CocoaError(.fileNoSuchFile)
    }
    return [UInt8](data)
}

@Suite struct LibtorrentFixtures {
    struct Known: Sendable, CustomTestStringConvertible {
        var file: String
        var v1: String?
        var v2: String?
        var root: String?
        var testDescription: String { file }
    }

    static let knownAnswers: [Known] = [
        Known(file: "v2", v1: "c14199bbec64d0e9e439aa3b6b7639e666b86eca",
              v2: "597b180c1a170a585dfc5e85d834d69013ceda174b8f357d5bb1a0ca509faf0a",
              root: "60aae9c7b428f87e0713e88229e18f0adf12cd7b22a0dd8a92bb2485eb7af242"),
        Known(file: "v2_multipiece_file", v1: "6c68c1bcc24c65b6fef4724d8234b67e0e9ac6a4",
              v2: "108ac2c3718ce722e6896edc56c4afa98f1d711ecaace7aad74fca418ebd03de",
              root: "515ea9181744b817744ded9d2e8e9dc6a8450c0b0c52e24b5077f302ffbd9008"),
        Known(file: "v2_only", v1: nil, v2: "95e04d0c4bad94ab206efa884666fd89777dbe4f7bd9945af1829037a85c6192",
              root: "515ea9181744b817744ded9d2e8e9dc6a8450c0b0c52e24b5077f302ffbd9008"),
        Known(file: "v2_no_piece_layers", v1: nil, v2: "95e04d0c4bad94ab206efa884666fd89777dbe4f7bd9945af1829037a85c6192", root: nil),
        Known(file: "v2_hybrid", v1: "514c76c1f27ec61ca8b37851bcd1cbf0b26cf120",
              v2: "518fbaf39b37020c896e8768a967da6d76bbd5ef7a02c761021b65a72c6cfa11", root: nil),
        Known(file: "v2_hybrid-missing-tailpad", v1: "631a31dd0a46257d5078c0dee4e66e26f73e42ac",
              v2: "d8dd32ac93357c368556af3ac1d95c9d76bd0dff6fa9833ecdac3d53134efabb", root: nil),
        Known(file: "empty-files-1", v1: "59ee9eb4b6ab57918cc3837e1b217409f4a10845",
              v2: "ee87fd27c23ad6ef1992b46ebee21b4a164e205c35bba38667ee1f79721a9f21", root: nil),
        Known(file: "v2_multiple_files", v1: nil, v2: "33549c6b0b7f0ce30f0cdc253ee05ccea3c67caa1560fa3c9bcc40c1837b5576", root: nil),
    ]

    @Test(arguments: knownAnswers)
    func validFixtureLoadsWithItsKnownHashes(_ k: Known) throws {
        let m = try Metainfo(bytes: try fixture(k.file))
        #expect(m.v1InfoHash?.hex == k.v1)
        #expect(m.v2InfoHash?.hex == k.v2)
        if let root = k.root { #expect(m.files.contains { $0.piecesRoot?.hex == root }) }
    }

    @Test(arguments: ["empty-files-2", "empty-files-3", "empty-files-4", "empty-files-5", "v2_empty_file",
                      "v2_symlinks", "v2_incomplete_piece_layer", "v2_invalid_filename"])
    func otherValidFixturesLoad(_ name: String) throws {
        let m = try Metainfo(bytes: try fixture(name))
        #expect(m.v2InfoHash != nil)
        for f in m.files {
            #expect(!f.path.contains { $0.isEmpty || $0 == "." || $0 == ".." || $0.contains("/") || $0.contains("\0") })
        }
    }

    @Test func symlinksAreKeptAsSymlinksWithSafeTargets() throws {
        let m = try Metainfo(bytes: try fixture("v2_symlinks"))
        let links = m.files.filter(\.isSymlink)
        #expect(!links.isEmpty)
        #expect(links.allSatisfy { $0.length == 0 && $0.piecesRoot == nil })
    }

    @Test func invalidFilenamesAreSanitizedNotTrusted() throws {
        let m = try Metainfo(bytes: try fixture("v2_invalid_filename"))
        #expect(!m.sanitizedPaths.isEmpty)
        #expect(m.files.allSatisfy { $0.path.count == 1 && !$0.path[0].contains("/") })
    }

    static let invalid: [String] = [
        "v2_mismatching_metadata", "v2_no_power2_piece", "v2_piece_size", "v2_invalid_file", "v2_deep_recursion",
        "v2_non_multiple_piece_layer", "v2_piece_layer_invalid_file_hash", "v2_invalid_piece_layer",
        "v2_invalid_piece_layer_root", "v2_unknown_piece_layer_entry", "v2_invalid_piece_layer_size",
        "v2_invalid_root_hash", "v2_bad_file_alignment", "v2_unordered_files", "v2_overlong_integer",
        "v2_missing_file_root_invalid_symlink", "v2_zero_root", "v2_zero_root_small", "v2_large_file",
        "v2_large_offset", "v2_invalid_pad_file",
    ]

    @Test(arguments: invalid)
    func invalidFixtureIsRejected(_ name: String) throws {
        let bytes = try fixture(name)
        #expect(throws: MetainfoError.self) { try Metainfo(bytes: bytes) }
    }

    /// Which error each invalid fixture gets: specific, not just "invalid".
    @Test func rejectionsNameTheProblem() throws {
        func error(_ name: String) throws -> MetainfoError? {
            let bytes = try fixture(name)
            do { _ = try Metainfo(bytes: bytes); return nil } catch { return error }
        }
        if case .bencoding(.unsortedKeys) = try error("v2_unordered_files") {} else { Issue.record("v2_unordered_files: \(String(describing: try error("v2_unordered_files")))") }
        if case .bencoding(.leadingZero) = try error("v2_overlong_integer") {} else { Issue.record("v2_overlong_integer") }
        if case .bencoding(.depthExceeded) = try error("v2_deep_recursion") {} else { Issue.record("v2_deep_recursion") }
        if case .invalidPieceLength = try error("v2_no_power2_piece") {} else { Issue.record("v2_no_power2_piece") }
        if case .padFileInFileTree = try error("v2_invalid_pad_file") {} else { Issue.record("v2_invalid_pad_file") }
        if case .invalidPiecesRoot(_, let reason) = try error("v2_zero_root") { #expect(reason == "all zeros") } else { Issue.record("v2_zero_root") }
        if case .missingPiecesRoot = try error("v2_missing_file_root_invalid_symlink") {} else { Issue.record("v2_missing_file_root_invalid_symlink") }
        if case .invalidFileLength = try error("v2_large_file") {} else { Issue.record("v2_large_file") }
        if case .pieceLayerUnknownRoot = try error("v2_unknown_piece_layer_entry") {} else { Issue.record("v2_unknown_piece_layer_entry") }
        if case .wrongType(key: "piece layers", _, _) = try error("v2_invalid_piece_layer") {} else { Issue.record("v2_invalid_piece_layer") }
        if case .pieceLayerMismatch = try error("v2_invalid_root_hash") {} else { Issue.record("v2_invalid_root_hash") }
        if case .pieceLayerMismatch = try error("v2_invalid_piece_layer_root") {} else { Issue.record("v2_invalid_piece_layer_root: \(String(describing: try error("v2_invalid_piece_layer_root")))") }
        if case .pieceLayerWrongSize = try error("v2_invalid_piece_layer_size") {} else { Issue.record("v2_invalid_piece_layer_size") }
        // Its v1 list has no pads, so the v1 stream is shorter than the aligned v2 one.
        if case .piecesFieldWrongSize = try error("v2_bad_file_alignment") {} else { Issue.record("v2_bad_file_alignment") }
        if case .hybridMismatch = try error("v2_mismatching_metadata") {} else { Issue.record("v2_mismatching_metadata") }
    }

    @Test(arguments: ["pad_file", "pad_file_no_path", "url_seed", "url_seed_multi", "url_seed_multi_space", "base", "sample", "empty_httpseed"])
    func v1FixturesLoad(_ name: String) throws {
        let m = try Metainfo(bytes: try fixture(name))
        #expect(m.version == .v1)
        #expect(m.v1InfoHash != nil && m.v2InfoHash == nil)
    }

    @Test func webSeedsAreRead() throws {
        let m = try Metainfo(bytes: try fixture("url_seed_multi"))
        #expect(!m.webSeeds.isEmpty)
    }
}
