// libFuzzer target for tracker responses: `HTTPTracker.response` (a bencoded announce
// body, BEP 3/7/23) and `UDPTracker.reply` (BEP 15 packets, as IPv4 and as IPv6). Built
// and run by Tools/fuzz/run, never by `swift build`. The first input byte picks the
// decoder (mod 4; 3: an announce query, `AnnounceRequest.parse`, answered by a
// `TrackerTable` and the body written and read back). Invariants:
// - at most TrackerLimits.maxPeers peers, each with a 4- or 16-byte address and a port;
// - intervals inside TrackerLimits.intervalRange;
// - a failure or warning text is at most maxMessageLength characters, on one line;
// - every error describes itself on one line;
// - a read announce has 20-byte hash and peer id, a port, byte counts >= 0, numwant <= 50;
//   its answer holds at most numwant distinct peers, never the asker, and reads back the same.

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

/// A fixed generator: the same input makes the same run.
private struct Steps: RandomNumberGenerator {
    var state: UInt64 = 0x2545_F491_4F6C_DD1D
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state
    }
}

/// An announce query as the gateway's tracker reads it, then answered by a table that already
/// holds a few peers of that hash (one on the asker's address), and the answer read back.
private func checkAnnounceQuery(_ query: String) {
    let request: AnnounceRequest
    do {
        request = try AnnounceRequest.parse(query)
    } catch {
        check(!error.reason.contains("\n") && error.reason.count <= 80, "refusal \(error.reason.debugDescription)")
        return
    }
    let a = request.announce
    check(a.infoHash.count == 20 && a.peerID.count == 20 && a.port != 0, "announce \(a)")
    check(a.left >= 0 && a.uploaded >= 0 && a.downloaded >= 0, "byte counts \(a)")
    check((0...TrackerServerLimits.maxNumWant).contains(a.numWant), "numwant \(a.numWant)")
    var table = TrackerTable()
    var steps = Steps()
    let asker: [UInt8] = [10, 0, 0, 1]
    for i in 0..<60 {
        var other = a
        other.port = UInt16(1000 + i)
        other.event = .started
        other.left = Int64(i % 2)
        _ = table.announce(other, from: i % 3 == 0 ? asker : [10, 0, 1, UInt8(i)], now: Double(i), using: &steps)
    }
    let answer = table.announce(a, from: asker, now: 100, using: &steps)
    let me = TrackerPeer(ip: asker, port: a.port)
    check(answer.peers.count <= a.numWant && !answer.peers.contains { $0 == me }, "\(answer.peers.count) peers for numwant \(a.numWant)")
    check(Set(answer.peers).count == answer.peers.count, "a peer twice in one answer")
    check(table.count <= 61, "\(table.count) entries")
    let body = HTTPTracker.body(answer, compact: request.compact)
    check(body.count <= 120 + 50 * 40, "an answer of \(body.count) bytes")
    do {
        let back = try HTTPTracker.response(body)
        check(Set(back.peers) == Set(answer.peers) && back.seeders == answer.seeders, "the answer reads back differently")
    } catch {
        fail("the answer does not read back: \(error)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTracker(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size > 0, let data else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let body = Array(bytes.dropFirst())
    switch bytes[0] % 4 {
    case 3:
        checkAnnounceQuery(String(decoding: body, as: UTF8.self))
    case 0:
        do { checkResponse(try HTTPTracker.response(body)) } catch { checkError(error) }
    default:
        do {
            switch try UDPTracker.reply(body, transaction: 7, ipv6: bytes[0] % 4 == 2) {
            case .announced(let r): checkResponse(r)
            case .connected: break
            }
        } catch {
            checkError(error)
        }
    }
    return 0
}
