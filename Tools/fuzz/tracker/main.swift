// libFuzzer target for tracker responses: `HTTPTracker.response` (a bencoded announce
// body, BEP 3/7/23) and `UDPTracker.reply` (BEP 15 packets, as IPv4 and as IPv6). Built
// and run by Tools/fuzz/run, never by `swift build`. The first input byte picks the
// decoder. Invariants:
// - at most TrackerLimits.maxPeers peers, each with a 4- or 16-byte address and a port;
// - intervals inside TrackerLimits.intervalRange;
// - a failure or warning text is at most maxMessageLength characters, on one line;
// - every error describes itself on one line.

import TrackerProtocol

#if canImport(Glibc)
import Glibc
#endif

private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fail(message()) }
}

private func fail(_ message: String) -> Never {
    let line = Array("fuzz-tracker: invariant broken: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    abort()
}

private func checkResponse(_ r: AnnounceResponse) {
    check(r.peers.count <= TrackerLimits.maxPeers, "\(r.peers.count) peers")
    check(TrackerLimits.intervalRange.contains(r.interval), "interval \(r.interval)")
    if let m = r.minInterval { check(TrackerLimits.intervalRange.contains(m), "min interval \(m)") }
    for p in r.peers { check((p.ip.count == 4 || p.ip.count == 16) && p.port != 0 && !p.description.isEmpty, "peer \(p)") }
    if let w = r.warning { checkText(w) }
}

private func checkText(_ text: String) {
    check(text.count <= 512 && !text.contains("\n") && !text.contains("\r"), "text \(text.debugDescription)")
}

private func checkError(_ e: TrackerError) {
    if case .failure(let why) = e { checkText(why) }
    check(!e.description.contains("\n"), "error on more than one line: \(e.description.debugDescription)")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTracker(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size > 0, let data else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let body = Array(bytes.dropFirst())
    switch bytes[0] % 3 {
    case 0:
        do { checkResponse(try HTTPTracker.response(body)) } catch { checkError(error) }
    default:
        do {
            switch try UDPTracker.reply(body, transaction: 7, ipv6: bytes[0] % 3 == 2) {
            case .announced(let r): checkResponse(r)
            case .connected: break
            }
        } catch {
            checkError(error)
        }
    }
    return 0
}
