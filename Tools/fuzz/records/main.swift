// libFuzzer target for the records Storage keeps in the state directory: the resume record
// (`ResumeRecord.parse`) and the download record (`DownloadRecord.parse`), read for one
// fixed torrent (files of 40,000, 0 and 5 bytes; 16 KiB pieces). Built and run by
// Tools/fuzz/run with Storage compiled `-enable-testing`, never by `swift build`.
//
// Both records end in a SHA-256 of what precedes it and carry the torrent's info hash after
// their 8-byte magic, which a fuzzer would never guess. So each input is tried twice: as it
// is, and as "magic ‖ rest" completed to "magic ‖ info hash ‖ rest ‖ SHA-256" (the seeds
// are written that way). Invariants:
// - a parsed record describes exactly the torrent's files; leaves, when present, are one
//   per 16 KiB block of the file; a bitfield has one bit per piece;
// - a record in the old formats (WSRESUM1, WSFETCH1) vouches for no file.

import Hashing
import Metainfo
import Merkle
@testable import Storage

#if canImport(Glibc)
import Glibc
#endif

private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fail(message()) }
}

private func fail(_ message: String) -> Never {
    let line = Array("fuzz-records: invariant broken: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    abort()
}

private let metainfo: Metainfo = {
    func tree(_ blocks: Int) -> MerkleTree { MerkleTree(leaves: (0..<blocks).map { Digests.sha256([UInt8($0)]) }) }
    let files = [HashedFile(path: ["a"], length: 40_000, tree: tree(3)), HashedFile(path: ["b"], length: 0, tree: nil),
                 HashedFile(path: ["c"], length: 5, tree: tree(1))]
    do { return try TorrentBuilder.build(name: "s", pieceLength: 16_384, files: files, hybrid: false).metainfo } catch { fail("\(error)") }
}()
private let key = metainfo.v2InfoHash!.bytes

private func checkResume(_ bytes: [UInt8]) {
    guard let r = ResumeRecord.parse(bytes, metainfo: metainfo) else { return }
    check(r.files.count == metainfo.files.count, "resume: \(r.files.count) files")
    for (f, rf) in zip(metainfo.files, r.files) {
        if let leaves = rf.leaves { check(leaves.count == (Int(f.length) + 16_383) / 16_384, "resume: \(leaves.count) leaves for \(f.length) bytes") }
    }
    if let p = r.pieces { check(p.count == metainfo.pieceCount, "resume: bitfield of \(p.count)") }
    if bytes.starts(with: Array("WSRESUM1".utf8)) { check(r.files.allSatisfy { $0.identity == nil } && r.pieces == nil, "an old resume record vouches") }
}

private func checkDownload(_ bytes: [UInt8]) {
    guard let r = DownloadRecord.parse(bytes, metainfo: metainfo) else { return }
    check(r.files.count == metainfo.files.count, "download: \(r.files.count) files")
    check(r.pieces.count == metainfo.pieceCount, "download: bitfield of \(r.pieces.count)")
    if bytes.starts(with: Array("WSFETCH1".utf8)) { check(r.files.allSatisfy { $0 == nil }, "an old download record vouches") }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRecords(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    checkResume(input)
    checkDownload(input)
    if input.count >= 8 {
        var completed = Array(input[..<8]) + key + Array(input[8...])
        completed += Digests.sha256(completed).bytes
        checkResume(completed)
        checkDownload(completed)
    }
    return 0
}
