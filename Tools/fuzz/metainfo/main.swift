// libFuzzer target for the torrent parser: `Metainfo(bytes:)` (InfoParser, piece layers,
// the fields outside `info`). Built and run by Tools/fuzz/run, never by `swift build`.
// Every input is one .torrent file. Invariants (Sources/Metainfo/README.md):
// - every path is safe to join onto a directory: no empty, `.` or `..` component, none
//   holding `/`, `\`, NUL, another control character or a direction override;
// - the name is safe the same way; sanitized paths are reported;
// - info hashes are over the exact `info` bytes, which are a slice of the input;
// - the files add up to more than 0 bytes; v2 files start on piece boundaries and the
//   piece count covers them; a hybrid's v1 entries agree with its files;
// - piece layers are present only for files of more than one piece, of the right size;
// - every error describes itself on one line.

import Bencode
import Hashing
import Metainfo

#if canImport(Glibc)
import Glibc
#endif

private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fail(message()) }
}

private func fail(_ message: String) -> Never {
    let line = Array("fuzz-metainfo: invariant broken: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    abort()
}

private func safe(_ c: String) -> Bool {
    if c.isEmpty || c == "." || c == ".." { return false }
    return !c.unicodeScalars.contains { s in
        s.value < 0x20 || s == "/" || s == "\\" || (0x202a...0x202e).contains(s.value) || s.value == 0x200e || s.value == 0x200f
    }
}

private func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard needle.count <= haystack.count else { return false }
    if needle.isEmpty { return true }
    for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] && haystack[i..<(i + needle.count)].elementsEqual(needle) {
        return true
    }
    return false
}

private func checkMetainfo(_ m: Metainfo, input: [UInt8]) {
    check(safe(m.name), "unsafe name \(m.name.debugDescription)")
    for f in m.files {
        check(f.path.allSatisfy(safe), "unsafe path \(f.path)")
        if let t = f.symlinkTarget { check(t.allSatisfy(safe), "unsafe symlink target \(t)") }
        check(f.length >= 0, "negative length")
        if f.isSymlink { check(f.length == 0 && f.piecesRoot == nil, "a symlink with data") }
    }
    check(m.totalSize > 0, "a torrent of 0 bytes loaded")
    check(contains(input, m.infoBytes), "infoBytes are not a slice of the input")
    if m.version.hasV2 {
        check(m.v2InfoHash == Digests.sha256(m.infoBytes), "v2 info hash is not over the info bytes")
        let pl = Int64(m.pieceLength)
        check(m.pieceLength >= 16_384 && m.pieceLength & (m.pieceLength - 1) == 0, "v2 piece length \(m.pieceLength)")
        var pieces: Int64 = 0
        for f in m.files where f.length > 0 && !f.isSymlink {
            check(f.offset % pl == 0, "\(f.pathString) does not start a piece")
            check(f.piecesRoot != nil, "\(f.pathString) has no root")
            pieces += (f.length + pl - 1) / pl
        }
        check(Int64(m.pieceCount) == pieces, "piece count \(m.pieceCount), files need \(pieces)")
        for (root, layer) in m.pieceLayers {
            guard let f = m.files.first(where: { $0.piecesRoot == root }) else { fail("a layer for no file") }
            check(f.length > pl && Int64(layer.count) == (f.length + pl - 1) / pl, "layer of \(layer.count) for \(f.length) bytes")
        }
    }
    if m.version.hasV1 {
        check(m.v1InfoHash == Digests.sha1(m.infoBytes), "v1 info hash is not over the info bytes")
        let total = m.v1Entries.last.map { $0.offset + $0.length } ?? 0
        check(Int64(m.v1PieceHashes.count) == (total + Int64(m.pieceLength) - 1) / Int64(m.pieceLength), "v1 piece hashes do not cover the data")
    }
    if m.version == .hybrid {
        let real = m.v1Entries.filter { !$0.isPad }
        check(real.count == m.files.count, "hybrid: \(real.count) v1 files, \(m.files.count) in the tree")
        for (a, b) in zip(real, m.files) { check(a.path == b.path && a.length == b.length, "hybrid: \(a.path) vs \(b.path)") }
    }
    _ = MagnetLink(metainfo: m).uri
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMetainfo(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    do {
        let m = try Metainfo(bytes: bytes)
        checkMetainfo(m, input: bytes)
    } catch {
        check(!error.description.contains("\n"), "an error of two lines: \(error.description.debugDescription)")
    }
    return 0
}
