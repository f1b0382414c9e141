// libFuzzer target for magnet links: `MagnetLink(parsing:)`. Built and run by
// Tools/fuzz/run, never by `swift build`. Every input is one link (as UTF-8; invalid bytes
// become U+FFFD, as when a link is read from a command line). Invariants:
// - a parsed link has an info hash, and its `uri` parses back to the same link;
// - the input was at most MagnetLink.maxLength bytes;
// - every error describes itself on one line.

import Metainfo

#if canImport(Glibc)
import Glibc
#endif

private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fail(message()) }
}

private func fail(_ message: String) -> Never {
    let line = Array("fuzz-magnet: invariant broken: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    abort()
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMagnet(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    let text = String(decoding: bytes, as: UTF8.self)
    do {
        let link = try MagnetLink(parsing: text)
        check(text.utf8.count <= MagnetLink.maxLength, "parsed a link of \(text.utf8.count) bytes")
        check(link.v1InfoHash != nil || link.v2InfoHash != nil, "a link without an info hash")
        let uri = link.uri
        do {
            let again = try MagnetLink(parsing: uri)
            check(again == link, "uri does not parse back to the same link: \(uri.debugDescription)")
        } catch {
            // Written links are longer (every byte escaped); only that may fail.
            check(uri.utf8.count > MagnetLink.maxLength, "uri does not parse: \(error) in \(uri.debugDescription)")
        }
    } catch {
        check(!error.description.contains("\n"), "an error of two lines: \(error.description.debugDescription)")
    }
    return 0
}
