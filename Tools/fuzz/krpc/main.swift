// libFuzzer target for the KRPC decoder (DHTProtocol) and the DHT node's answer to one datagram
// (DHTNodeCore). Built and run by Tools/fuzz/run, never by `swift build`:
//
//   swiftc -sanitize=fuzzer,address … Tools/fuzz/krpc/main.swift Sources/DHT/DHTNodeCore.swift
//
// Every input is one UDP datagram. A broken `check` (it prints why, then aborts) is a bug in webseed (or in an
// invariant stated here that webseed's documentation does not promise: read the message).
//
// 1. Decoder: `KRPCMessage(decoding:expectedMethod:)` under each possible answer of the
//    transaction lookup (none outstanding, or each of the four methods), and
//    `KRPCMessage.queryTransactionID(in:)`. Invariants (Sources/DHTProtocol/README.md):
//    - a query decodes the same whatever the lookup says, and never asks it; a reply asks it
//      exactly once and is rejected when it says nothing is outstanding;
//    - a decoded message came from ≤ 1,500 bytes, has a t of ≤ 16 bytes, and survives
//      encode → decode unchanged;
//    - a decoded query's t is what queryTransactionID gives; an unknown method (204) is only
//      reported for a datagram queryTransactionID can answer;
//    - every error describes itself (its text is built from stranger-supplied bytes).
// 2. Node: a DHTNodeCore prepared once (300 nodes in its table, 60 peers announced for the
//    hash "HHHHHHHHHHHHHHHHHHHH", a find_node and a get_peers outstanding to the fuzzer's
//    address) is copied for each input, which arrives from that address. The two-byte
//    transaction ids "TT" and "UU" in an input (`1:t2:TT`, `1:t2:UU`) are replaced by those
//    of the outstanding find_node and get_peers, so the fuzzer reaches the reply paths.
//    Invariants:
//    - every datagram sent fits in 1,500 bytes;
//    - every reply to the input is at most 8 × the input's size, decodes, and echoes its t;
//    - every query the node sends decodes.

import Bencode
import DHTProtocol

#if canImport(Glibc)
import Glibc
#endif

/// `precondition` that also says why in optimised builds (where Swift drops the message).
private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fail(message()) }
}

private func fail(_ message: String) -> Never {
    let line = Array("fuzz-krpc: invariant broken: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    abort()
}

// MARK: decoder

private let methods: [KRPCMethod?] = [nil] + KRPCMethod.allCases

private func checkDecoder(_ bytes: [UInt8]) {
    let tid = KRPCMessage.queryTransactionID(in: bytes)
    if let t = tid { check(t.count <= KRPCLimits.maxTransactionIDLength, "queryTransactionID gave a t of \(t.count) bytes") }

    var asQuery: KRPCMessage?
    for expected in methods {
        var asked = 0
        let result: Result<KRPCMessage, KRPCError>
        do {
            result = .success(try KRPCMessage(decoding: bytes) { _ in asked += 1; return expected })
        } catch {
            result = .failure(error)
        }
        check(asked <= 1, "expectedMethod called \(asked) times")
        switch result {
        case .success(let m):
            check(bytes.count <= KRPCLimits.maxDatagramSize, "decoded a datagram of \(bytes.count) bytes")
            check(m.transactionID.count <= KRPCLimits.maxTransactionIDLength, "decoded a t of \(m.transactionID.count) bytes")
            switch m.body {
            case .query:
                check(asked == 0, "a query asked for the outstanding method")
                check(tid == m.transactionID, "queryTransactionID \(String(describing: tid)) differs from the query's t \(m.transactionID)")
                if let q = asQuery { check(q == m, "a query decoded differently under another expected method") }
                asQuery = m
            case .response, .error:
                check(asked == 1, "a reply did not ask for the outstanding method")
                check(expected != nil, "a reply was accepted with nothing outstanding")
            }
            // encode → decode gives the same message (when the encoding still fits: invalid
            // UTF-8 in an error message is re-encoded as U+FFFD, 3 bytes for 1)
            let again = m.encoded()
            if again.count <= KRPCLimits.maxDatagramSize {
                do {
                    let m2 = try KRPCMessage(decoding: again) { _ in expected }
                    check(m2 == m, "re-encoded message decodes differently")
                } catch {
                    fail("re-encoded message does not decode: \(error)")
                }
            }
        case .failure(let error):
            _ = error.description
            if case .datagramTooLarge = error { check(bytes.count > KRPCLimits.maxDatagramSize, "datagramTooLarge for \(bytes.count) bytes") }
            if error.replyCode == .methodUnknown { check(tid != nil, "204 for a datagram with no t to answer") }
            if asQuery != nil, expected != nil {
                fail("a query decoded with no method outstanding but failed with \(expected!): \(error)")
            }
        }
    }
}

// MARK: node

private let t0 = 10_000.0
private let source = Endpoint(ip: .v4(0x7f00_0002), port: 6881)  // 127.0.0.2:6881, the fuzzer

/// A deterministic generator for the prepared node's population.
private struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private struct Prepared: Sendable {
    var core: DHTNodeCore
    var findNodeT: [UInt8]
    var getPeersT: [UInt8]
}

private func randomID(_ rng: inout SplitMix) -> NodeID {
    NodeID(bytes: (0..<20).map { _ in UInt8.random(in: 0...255, using: &rng) })!
}

private func transactionID(_ bytes: [UInt8]) -> [UInt8] {
    guard case .dictionary(let d)? = try? BencodeDecoder.decode(bytes, limits: .message), case .bytes(let t)? = d["t"] else {
        fail("the node sent a datagram without a t")
    }
    return t
}

private let prepared: Prepared = {
    var rng = SplitMix(state: 1)
    var core = DHTNodeCore(id: randomID(&rng), now: t0)
    for i in 0..<300 {  // nodes that queried us: 10.0.x.y
        let q = KRPCMessage.query([0, 1], KRPCQuery(sender: randomID(&rng), arguments: .ping)).encoded()
        _ = core.receive(q, from: Endpoint(ip: .v4(0x0a00_0000 | UInt32(i + 1)), port: 6881), now: t0)
    }
    let hash = NodeID(bytes: Array(repeating: UInt8(ascii: "H"), count: 20))!  // 20 × "H", as in the seeds
    for i in 0..<60 {  // peers of `hash`: 11.0.0.x
        let from = Endpoint(ip: .v4(0x0b00_0000 | UInt32(i + 1)), port: 6881)
        let id = randomID(&rng)
        let ask = KRPCMessage.query([0, 2], KRPCQuery(sender: id, arguments: .getPeers(.init(infoHash: hash)))).encoded()
        let reply = core.receive(ask, from: from, now: t0)
        guard let r = reply.first, let m = try? KRPCMessage(decoding: r.bytes, expectedMethod: { _ in .getPeers }),
              case .response(let resp) = m.body, let token = resp.token else { fail("no token for the prepared announces") }
        let announce = KRPCQuery(sender: id, arguments: .announcePeer(.init(infoHash: hash, port: UInt16(7000 + i), token: token)))
        _ = core.receive(KRPCMessage.query([0, 3], announce).encoded(), from: from, now: t0)
    }
    // The fuzzer's address as a node (id X, close to ours: a bucket of its own, so it is in
    // the table), with a find_node and a get_peers outstanding to it.
    var xb = core.id.bytes
    xb[12] ^= 0x80
    let x = NodeID(bytes: xb)!
    _ = core.receive(KRPCMessage.query([0, 4], KRPCQuery(sender: x, arguments: .ping)).encoded(), from: source, now: t0)
    guard let f = core.bootstrap([source], now: t0).first(where: { $0.to == source }) else { fail("no bootstrap query") }
    guard let g = core.getPeers(x, announcePort: 6881, now: t0).1.first(where: { $0.to == source }) else { fail("no get_peers query") }
    _ = core.drainEvents()
    let ft = transactionID(f.bytes), gt = transactionID(g.bytes)
    check(ft.count == 2 && gt.count == 2, "the node's transaction ids are not 2 bytes")
    return Prepared(core: core, findNodeT: ft, getPeersT: gt)
}()

private func substitute(_ bytes: inout [UInt8], placeholder: [UInt8], with t: [UInt8]) {
    let pattern = Array("1:t2:".utf8) + placeholder
    guard bytes.count >= pattern.count else { return }
    for i in 0...(bytes.count - pattern.count) where bytes[i..<(i + pattern.count)].elementsEqual(pattern) {
        bytes.replaceSubrange((i + 5)..<(i + 7), with: t)
        return
    }
}

private func checkNode(_ original: [UInt8]) {
    var input = original
    substitute(&input, placeholder: Array("TT".utf8), with: prepared.findNodeT)
    substitute(&input, placeholder: Array("UU".utf8), with: prepared.getPeersT)
    var core = prepared.core
    let out = core.receive(input, from: source, now: t0 + 1)
    _ = core.drainEvents()

    var inputQuery: KRPCMessage?
    if let m = try? KRPCMessage(decoding: input, expectedMethod: { _ in nil }), case .query = m.body { inputQuery = m }
    let inputT = inputQuery?.transactionID ?? KRPCMessage.queryTransactionID(in: input)

    for o in out {
        check(o.bytes.count <= KRPCLimits.maxDatagramSize, "the node sent \(o.bytes.count) bytes")
        if KRPCMessage.queryTransactionID(in: o.bytes) != nil {
            // a query of the node's own (a lookup moving on)
            do { _ = try KRPCMessage(decoding: o.bytes) { _ in nil } } catch { fail("the node sent a query that does not decode: \(error)") }
            continue
        }
        check(o.to == source, "a reply went to \(o.to), not to the asker")
        check(o.bytes.count <= 8 * input.count, "reply of \(o.bytes.count) bytes to a \(input.count)-byte datagram (more than 8×)")
        let method: KRPCMethod
        if case .query(let q)? = inputQuery?.body { method = q.method } else { method = .ping }
        do {
            let reply = try KRPCMessage(decoding: o.bytes) { _ in method }
            check(reply.transactionID == inputT, "the reply's t \(reply.transactionID) is not the query's \(String(describing: inputT))")
        } catch {
            fail("the node's reply does not decode: \(error)")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKRPC(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    checkDecoder(bytes)
    checkNode(bytes)
    return 0
}
