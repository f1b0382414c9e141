// libFuzzer target for the peer wire decoder: `PeerWireDecoder` (handshake, then length-prefixed
// messages), the seeder's `BudgetedDecoder` around it, and `PeerConnection`, the connection's
// pure machine (with `PeerSession` serving a fixed torrent) fed what the decoder gives. The
// Swarm files these need (ReceiveBudget, PeerConnection, PeerSession, SeedTorrent,
// HandshakeFacts, CloseReason, FetchReasons, PEXState, PEXScope) are compiled into this target,
// without NIOPosix.
// Built and run by Tools/fuzz/run, never by `swift build`.
//
// Every input is one connection's bytes: input[0] holds flags (bit 0: the stream starts with
// the handshake, as on an accepted connection; bit 1: decode with a 100-byte message limit
// instead of the seeder's 1 MiB; bit 2: the torrent has every piece, else pieces 0 and 2 of 3;
// bit 3: the handshake names an unknown torrent; bit 4: the peer's address has no connection
// left), input[1] seeds how the stream is cut into reads (and which choker, writability and
// timer events come between them; an interested peer is usually unchoked by the next read),
// the rest is the stream. It is decoded the way NIO's ByteToMessageHandler drives a decoder: bytes
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
//   before a refusal are the unlimited decoder's, and releasing the connection frees its share;
// - PeerConnection closes at most once and does nothing after it but report `left` once when
//   the socket goes; nothing is sent before the handshake is accepted; disk reads are only of
//   blocks the peer requested, that are valid, of pieces we have, while it is unchoked, at
//   most 128 at once; a piece sent is a block just read for a request; rejects and the fast
//   extension's messages go only to a peer that set the fast bit; extension messages only to
//   the id the peer gave for ut_metadata (or our handshake, id 0); interest is reported only
//   when it changes; peers learned by PEX come at most 50 a message and 200 a connection.

import Bencode
import Metainfo
import NIOCore
import PeerWire
import Storage

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

/// The torrent the seeder serves: v1, three 32 KiB pieces (the last 14,464 bytes).
private let metainfo: Metainfo = {
    let info = BDictionary([("length", .integer(80_000)), ("name", .string("site.bin")), ("piece length", .integer(32_768)),
                            ("pieces", .bytes([UInt8](repeating: 9, count: 60)))])
    do { return try Metainfo(bytes: BValue.dictionary(BDictionary([("info", .dictionary(info))])).encoded()) } catch {
        fail("the fixed torrent does not parse: \(error)")
    }
}()
private let fullTorrent = SeedTorrent(metainfo: metainfo, directory: "/nonexistent",
                                      data: LocalData(downloaded: PieceSet(count: 3, full: true), generations: [:]))
private let partialTorrent: SeedTorrent = {
    var pieces = PieceSet(count: 3)
    pieces.insert(0)
    pieces.insert(2)
    return SeedTorrent(metainfo: metainfo, directory: "/nonexistent", data: LocalData(downloaded: pieces, generations: [:]))
}()
private let ourPeerID = Array("-WS0100-fuzzfuzzfuzz".utf8)
/// FUZZ_TRACE=1 prints every event and the connection's actions (to replay one input).
private let trace = getenv("FUZZ_TRACE") != nil

/// Drives one PeerConnection through the stream as PeerHandler would, checking every action.
private func connection(_ stream: ArraySlice<UInt8>, flags: UInt8, seed: UInt8) {
    let torrent = flags & 4 != 0 ? fullTorrent : partialTorrent
    var machine = PeerConnection(outgoing: false)
    var decoder = PeerWireDecoder(expectHandshake: flags & 1 != 0)
    var buffer = ByteBuffer()
    var now = 1_000.0
    var state = UInt32(seed) &* 2_246_822_519 | 1
    func random() -> UInt32 { state ^= state << 13; state ^= state >> 17; state ^= state << 5; return state }

    var closed = false, left = false, connected = false, served = false, fast = false
    var interested = false, unchoked = false, writable = true
    var requested: Set<BlockRequest> = []
    var inFlight: [BlockRequest] = []
    var peerMetadataID: UInt8?
    var justRead: BlockRequest?
    var learnedPeers = 0

    func apply(_ event: PeerConnection.Event) {
        let actions = machine.handle(event, now: now)
        if trace {
            let line = Array("\(event) -> \(actions)\n".utf8)
            _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        }
        var reads: [BlockRequest] = []
        for a in actions {
            check(!left, "\(a) after left")
            if case .left = a {} else { check(!closed, "\(a) after close, on \(event)") }
            switch a {
            case .close:
                closed = true
            case .left(let s, _, _):
                check(!left, "left twice")
                check(s == served, "left with served \(s), serving was \(served)")
                left = true
            case .sendHandshake:
                check(!connected, "a second handshake")
            case .connected:
                check(!connected, "connected twice")
                connected = true
            case .serving:
                served = true
            case .joinDownload, .toDownload:
                fail("\(a) without a download")
            case .learned(let peers, let refused):
                check(!peers.isEmpty && peers.count <= 50 && refused >= 0, "PEX learned \(peers.count) peers, refused \(refused)")
                learnedPeers += peers.count
                check(learnedPeers <= 200, "PEX learned \(learnedPeers) peers on one connection")
            case .interested(let i):
                check(i != interested, "interest reported unchanged: \(i)")
                interested = i
            case .read(let batch):
                check(connected && unchoked && writable, "a read while connected \(connected), unchoked \(unchoked), writable \(writable)")
                for r in batch {
                    let piece = Int(r.piece)
                    check(requested.contains(r), "a read of \(r), never requested")
                    check(piece < 3 && torrent.pieces.contains(piece) && r.length >= 1 && r.length <= 16_384
                          && Int(r.begin) + Int(r.length) <= torrent.pieceSize(piece), "a read of an invalid \(r)")
                    check(!inFlight.contains(r), "\(r) read twice at once")
                    inFlight.append(r)
                }
                check(inFlight.count <= PeerSession.readAhead, "\(inFlight.count) reads at once")
                reads += batch
            case .send(let m):
                check(connected, "\(m) sent before the handshake")
                switch m {
                case .piece(let p, let b, let block):
                    check(justRead == BlockRequest(piece: p, begin: b, length: UInt32(block.readableBytes)), "a piece not just read: \(p) \(b)")
                case .rejectRequest, .haveAll, .haveNone, .allowedFast, .suggestPiece:
                    check(fast, "\(m) to a peer without the fast extension")
                case .extended(let id, _):
                    check(id == 0 || id == peerMetadataID, "extended id \(id); the peer's ut_metadata is \(String(describing: peerMetadataID))")
                default:
                    break
                }
            }
        }
        // The disk answers at once: every 5th block fails (a file changed), the others are zeros.
        for r in reads {
            guard let i = inFlight.firstIndex(of: r) else { continue }
            inFlight.remove(at: i)
            justRead = r
            apply(random() % 5 == 0 ? .blockFailed(r) : .blockRead(r, ByteBuffer(repeating: 0, count: Int(r.length))))
            justRead = nil
        }
    }

    var i = stream.startIndex
    reading: while i < stream.endIndex {
        let n = min(Int(random() % 64) + 1, stream.endIndex - i)
        buffer.writeBytes(stream[i..<(i + n)])
        i += n
        do {
            while let frame = try decoder.decode(buffer: &buffer) {
                switch frame {
                case .handshake(let h):
                    fast = h.reserved.fast
                    let facts = HandshakeFacts(handshake: h, target: flags & 8 != 0 ? .unknown : .torrent(torrent), ourPeerID: ourPeerID,
                                               host: "192.0.2.1", peerAddress: [192, 0, 2, 1], fromSameHost: flags & 16 != 0 ? 8 : 0,
                                               maxPerHost: 8)
                    apply(.handshake(facts))
                case .message(let m):
                    switch m {
                    case .request(let r): requested.insert(r)
                    case .extended(0, let payload):
                        if let h = try? ExtensionHandshake(decoding: Array(buffer: payload)), let id = h.messages["ut_metadata"] {
                            peerMetadataID = id == 0 ? nil : id
                        }
                    default: break
                    }
                    apply(.message(m, downloadComplete: false))
                }
            }
        } catch {
            apply(.close(.error("\(error)")))
            break reading
        }
        apply(.readComplete)
        // The choker unchokes an interested peer, usually by the next read.
        if interested && !unchoked && random() % 4 != 0 { unchoked = true; apply(.choke(false)) }
        // (Before the handshake there is no session to choke: the machine ignores these, and the
        // session starts choked and writable.)
        switch random() % 8 {
        case 0: if served { unchoked = false }; apply(.choke(true))
        case 1, 2: if served { unchoked = true }; apply(.choke(false))
        case 3: if served { writable = false }; apply(.writable(false))
        case 4: if served { writable = true }; apply(.writable(true))
        case 5: now += 100; apply(.tick)
        case 6: apply(.handshakeTimeout)
        default: break
        }
    }
    apply(.socketClosed)
    check(left, "the socket closed without left")
    apply(.socketClosed)
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

    connection(stream, flags: input[0], seed: input[1])

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
