// libFuzzer target for the peer wire decoder: `PeerWireDecoder` (handshake, then length-prefixed
// messages) and the seeder's `BudgetedDecoder` around it (Sources/Swarm/ReceiveBudget.swift,
// compiled into this target). Built and run by Tools/fuzz/run, never by `swift build`.
//
// Every input is one connection's bytes: input[0] holds flags (bit 0: the stream starts with
// the handshake, as on an accepted connection; bit 1: decode with a 100-byte message limit
// instead of the seeder's 1 MiB), input[1] seeds how the stream is cut into reads, the rest is
// the stream. It is decoded the way NIO's ByteToMessageHandler drives a decoder: bytes
// appended as each read arrives, `decode` called until it returns nil or throws, `decodeLast`
// at the end. Invariants:
// - the frames, and the error that ends the connection, are the same however the stream is
//   cut into reads (all at once, or one byte at a time, or in the fuzzer's cuts);
// - every decoded frame encodes back to exactly the bytes it was decoded from (so nothing is
//   read past a frame, and fixed-size messages had their size);
// - what stays buffered after a read is less than one frame (4 + the message limit, or the
//   68-byte handshake);
// - the seeder's decoder (BudgetedDecoder with the seeder's 32 MiB budget and 64 KiB
//   allowance) gives the same frames; with a small budget (1,024 bytes, 128 free per
//   connection, shared with a second connection holding 600) the shared count never passes
//   the limit, a connection is refused only while holding more than its allowance, the frames
//   before a refusal are the unlimited decoder's, and releasing the connection frees its share.

import NIOCore
import PeerWire

#if canImport(Glibc)
import Glibc
#endif

private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fail(message()) }
}

private func fail(_ message: String) -> Never {
    let line = Array("fuzz-peerwire: invariant broken: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    abort()
}

/// What one connection's decoding produced.
private struct Outcome: Equatable {
    var frames: [PeerWireFrame] = []
    /// The error that ended decoding, as text (nil: the stream ran out).
    var error: String?
    /// Bytes of the stream the frames were decoded from (the error's frame excluded).
    var consumed = 0
    /// A refusal of the receive budget: the bytes the connection held.
    var refusedHolding: Int?
}

/// Feeds `chunks` to `decoder` as ByteToMessageHandler does; `afterStep` sees the buffer
/// after every decode call, and whether it returned nil (waits for more bytes).
private func run<D: NIOSingleStepByteToMessageDecoder>(
    _ decoder: inout D, _ chunks: [ArraySlice<UInt8>], afterStep: (ByteBuffer, Bool) -> Void = { _, _ in }
) -> Outcome where D.InboundOut == PeerWireFrame {
    var out = Outcome()
    var buffer = ByteBuffer()
    var total = 0
    do {
        for chunk in chunks {
            buffer.writeBytes(chunk)
            total += chunk.count
            while true {
                let before = buffer.readableBytes
                let frame = try decoder.decode(buffer: &buffer)
                afterStep(buffer, frame == nil)
                guard let frame else {
                    check(buffer.readableBytes == before, "decode returned nil and consumed bytes")
                    break
                }
                out.frames.append(frame)
                out.consumed = total - buffer.readableBytes
            }
        }
        while let frame = try decoder.decodeLast(buffer: &buffer, seenEOF: true) {
            afterStep(buffer, false)
            out.frames.append(frame)
            out.consumed = total - buffer.readableBytes
        }
    } catch {
        out.error = "\(error)"
        out.refusedHolding = (error as? ReceiveBudgetExceeded)?.held
    }
    return out
}

private func encode(_ frames: [PeerWireFrame]) -> [UInt8] {
    var b = ByteBuffer()
    for f in frames {
        switch f {
        case .handshake(let h): h.encode(into: &b)
        case .message(let m): m.encode(into: &b)
        }
    }
    return Array(b.readableBytesView)
}

/// Cuts `stream` into reads of 1…64 bytes, chosen by a small PRNG seeded with `seed`.
private func cuts(_ stream: ArraySlice<UInt8>, seed: UInt8) -> [ArraySlice<UInt8>] {
    var state = UInt32(seed) &* 2_654_435_761 | 1
    var out: [ArraySlice<UInt8>] = []
    var i = stream.startIndex
    while i < stream.endIndex {
        state ^= state << 13; state ^= state >> 17; state ^= state << 5
        let n = min(Int(state % 64) + 1, stream.endIndex - i)
        out.append(stream[i..<(i + n)])
        i += n
    }
    return out
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPeerWire(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size >= 2, let data else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let handshake = input[0] & 1 != 0
    let limit = input[0] & 2 != 0 ? 100 : PeerWireDecoder.defaultMaxMessageLength
    let stream = input[2...]

    // All at once: the reference.
    var whole = PeerWireDecoder(maxMessageLength: limit, expectHandshake: handshake)
    let reference = run(&whole, [stream])
    check(encode(reference.frames) == Array(stream.prefix(reference.consumed)),
          "frames do not encode back to the \(reference.consumed) bytes they came from")
    for case .message(let m) in reference.frames {
        check(m.wireLength <= 4 + limit, "a message of \(m.wireLength) bytes passed the \(limit)-byte limit")
    }

    // In the fuzzer's cuts, and byte by byte: the same outcome, and never a frame's worth buffered.
    for chunks in [cuts(stream, seed: input[1]), stream.indices.map { stream[$0...$0] }] {
        var decoder = PeerWireDecoder(maxMessageLength: limit, expectHandshake: handshake)
        let outcome = run(&decoder, chunks) { buffer, waiting in
            guard waiting else { return }
            check(buffer.readableBytes < max(4 + limit, Handshake.length), "\(buffer.readableBytes) bytes buffered, waiting for more")
        }
        check(outcome == reference, "cut into \(chunks.count) reads: \(outcome.frames.count) frames, error \(outcome.error ?? "none"); "
              + "at once: \(reference.frames.count) frames, error \(reference.error ?? "none")")
    }

    // The seeder's own decoder, with its limits.
    // (It always starts with the handshake and has the default message limit.)
    guard handshake, limit == PeerWireDecoder.defaultMaxMessageLength else { return 0 }
    let seederBudget = ReceiveBudget(limit: 32 << 20, allowance: 64 << 10)
    var seeder = BudgetedDecoder(budget: seederBudget, account: ReceiveBudget.Account())
    let seen = run(&seeder, cuts(stream, seed: input[1]))
    check(seen == reference, "the seeder's decoder differs: \(seen.frames.count) frames, error \(seen.error ?? "none")")

    // A small budget shared with another connection.
    let budget = ReceiveBudget(limit: 1_024, allowance: 128)
    let other = ReceiveBudget.Account()
    check(budget.hold(600, in: other), "the other connection's 600 bytes were refused")
    let account = ReceiveBudget.Account()
    var small = BudgetedDecoder(budget: budget, account: account)
    let outcome = run(&small, cuts(stream, seed: input[1])) { _, _ in
        check(budget.charged <= budget.limit, "\(budget.charged) bytes charged, over the \(budget.limit)-byte limit")
    }
    check(budget.charged <= budget.limit, "\(budget.charged) bytes charged, over the \(budget.limit)-byte limit")
    if let held = outcome.refusedHolding {
        check(held > budget.allowance, "refused while holding \(held) bytes, within the allowance")
        check(reference.frames.starts(with: outcome.frames), "frames before the refusal differ from the unlimited decoder's")
    } else {
        check(outcome == reference, "with a small budget: \(outcome.frames.count) frames, error \(outcome.error ?? "none")")
    }
    budget.release(account)
    check(budget.charged == 600 - budget.allowance, "after release \(budget.charged) bytes stay charged")
    budget.release(other)
    check(budget.charged == 0, "after both releases \(budget.charged) bytes stay charged")
    return 0
}
