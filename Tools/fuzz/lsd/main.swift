// libFuzzer target for BEP 14 local discovery announces: `LSDMessage.parse` (what any host
// on the LAN may multicast) and `LSDSchedule.received`. Built and run by Tools/fuzz/run,
// never by `swift build`. Invariants:
// - a parsed announce has a port and 1… hashes of 20 bytes, came from at most 1400 bytes,
//   and encodes to a packet that parses back to the same announce;
// - the schedule takes in only hashes it wants;
// - every error describes itself on one line.

import LocalDiscovery

#if canImport(Glibc)
import Glibc
#endif

private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fail(message()) }
}

private func fail(_ message: String) -> Never {
    let line = Array("fuzz-lsd: invariant broken: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    abort()
}

private let wanted = [UInt8](repeating: 0xAB, count: 20)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLSD(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    do {
        let m = try LSDMessage.parse(bytes, group: .ipv4)
        check(bytes.count <= LSDMessage.maxSize, "parsed \(bytes.count) bytes")
        check(m.port != 0 && !m.hashes.isEmpty && m.hashes.allSatisfy { $0.count == 20 }, "announce \(m)")
        if m.encoded().count <= LSDMessage.maxSize {
            let again = try LSDMessage.parse(m.encoded(), group: .ipv4)
            check(again == m, "does not parse back: \(m)")
        }
        var schedule = LSDSchedule(cookie: "fuzz")
        schedule.want([wanted])
        let taken = schedule.received(m, from: "10.0.0.2", now: 0)
        check(taken.allSatisfy { $0 == wanted }, "took hashes not wanted")
    } catch {
        check(!error.description.contains("\n"), "error on more than one line: \(error.description.debugDescription)")
    }
    return 0
}
