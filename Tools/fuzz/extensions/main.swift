// libFuzzer target for the payloads of BEP 10 `extended` messages, as PeerWire decodes them:
// the extension handshake (`ExtensionHandshake(decoding:)`, extended id 0) and BEP 9
// ut_metadata messages (`MetadataMessage.decode`), and BEP 11 ut_pex messages (`PEXMessage.decode`). (upload_only, id 3, carries one byte that
// PeerSession reads itself; PeerWire has no decoder for it.) Built and run by Tools/fuzz/run,
// never by `swift build`; the peerwire target fuzzes the framing around these payloads.
//
// Every input is one payload, given to both decoders. Invariants:
// - a decoded handshake holds only what the peer may set: message ids 0…255, metadata_size in
//   1…Int32.max, reqq in 1…100,000, yourip of 4 or 16 bytes, a listen port in 1…65,535; what it
//   encodes decodes back to the same handshake;
// - a decoded ut_metadata message has a piece in 0..<Int32.max and, for data, a total size in
//   1..<Int32.max and the payload that follows the dictionary; it encodes back to the bytes it
//   came from when those were canonical (for a request or reject: its dictionary; bytes after
//   it are ignored), and always decodes back to itself;
// - the payload bytes are bounded (BencodeLimits.message) before anything is built from them;
// - a decoded BEP 11 ut_pex message came from at most PEXMessage.maxSize bytes, holds only
//   4- or 16-byte addresses, and what it encodes (when within the cap) decodes back to it.

import Bencode
import PeerWire

#if canImport(Glibc)
import Glibc
#endif

private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fail(message()) }
}

private func fail(_ message: String) -> Never {
    let line = Array("fuzz-extensions: invariant broken: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    abort()
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzExtensions(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []

    if let h = try? ExtensionHandshake(decoding: bytes) {
        if let s = h.metadataSize { check(s >= 1 && s <= Int(Int32.max), "metadata_size \(s)") }
        if let q = h.requestQueue { check(q >= 1 && q <= 100_000, "reqq \(q)") }
        if let ip = h.yourIP { check(ip.count == 4 || ip.count == 16, "yourip of \(ip.count) bytes") }
        if let p = h.listenPort { check(p >= 1, "listen port 0") }
        let encoded = h.encode()
        do {
            let again = try ExtensionHandshake(decoding: encoded)
            check(again == h, "the handshake does not decode back to itself from \(String(decoding: encoded, as: UTF8.self).debugDescription)")
        } catch {
            fail("the handshake's encoding does not decode: \(error)")
        }
    }

    if let m = try? MetadataMessage.decode(bytes) {
        let encoded = m.encode()
        switch m {
        case .request(let p), .reject(let p):
            check(p >= 0 && p < Int(Int32.max), "piece \(p)")
        case .data(let p, let total, let payload):
            check(p >= 0 && p < Int(Int32.max), "piece \(p)")
            check(total >= 1 && total < Int(Int32.max), "total_size \(total)")
            check(bytes.count >= payload.count && Array(bytes.suffix(payload.count)) == payload, "the data is not what follows the dictionary")
        }
        // The dictionary as sent is canonical (sorted keys, no extra keys): then it comes back as it was.
        if let prefix = try? BencodeDecoder.decodePrefix(bytes, limits: .message), let d = prefix.0.dictionary,
           d.entries.count == (d["msg_type"]?.integer == 1 ? 3 : 2),
           BValue.dictionary(d).encoded() == Array(bytes[..<prefix.1]) {
            // (Bytes after a request's or reject's dictionary are ignored; after data's, they are the data.)
            let sent = d["msg_type"]?.integer == 1 ? bytes : Array(bytes[..<prefix.1])
            check(encoded == sent, "a canonical message encodes differently")
        }
        do {
            let again = try MetadataMessage.decode(encoded)
            check(again == m, "the message does not decode back to itself")
        } catch {
            fail("the message's encoding does not decode: \(error)")
        }
    }
    if let m = try? PEXMessage.decode(bytes) {
        check(bytes.count <= PEXMessage.maxSize, "a ut_pex message of \(bytes.count) bytes decoded")
        for p in m.added.map(\.peer) + m.dropped { check(p.ip.count == 4 || p.ip.count == 16, "an address of \(p.ip.count) bytes") }
        // (Flags absent from the input are written as zeros, so the encoding may outgrow the cap.)
        let encoded = m.encode()
        if encoded.count <= PEXMessage.maxSize {
            do {
                let again = try PEXMessage.decode(encoded)
                check(again == m, "the ut_pex message does not decode back to itself")
            } catch {
                fail("the ut_pex message's encoding does not decode: \(error)")
            }
        }
    }
    return 0
}
