// libFuzzer target for the bencode decoder. Built and run by Tools/fuzz/run, never by
// `swift build`. Every input is one document. Invariants (Sources/Bencode):
// - the decoder is strict and canonical: whatever decodes re-encodes to exactly the input
//   (for decodePrefix: exactly the bytes it consumed);
// - decodeTopLevelDictionary agrees with decode, and each span it returns re-decodes to
//   the value under that key;
// - the lenient mode (unsorted keys) accepts everything the strict one does, with the same
//   value;
// - the message limits (depth 16, 8,192 items, 64 KiB) are never exceeded by what decodes;
// - every error describes itself on one line.

import Bencode

#if canImport(Glibc)
import Glibc
#endif

private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fail(message()) }
}

private func fail(_ message: String) -> Never {
    let line = Array("fuzz-bencode: invariant broken: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    abort()
}

private func depth(_ v: BValue) -> Int {
    switch v {
    case .list(let l): 1 + (l.map(depth).max() ?? 0)
    case .dictionary(let d): 1 + (d.entries.map { depth($0.value) }.max() ?? 0)
    default: 0
    }
}

private func oneLine(_ e: BencodeError) {
    check(!e.description.contains("\n"), "an error of two lines: \(e.description)")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBencode(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []

    var whole: BValue?
    do {
        let v = try BencodeDecoder.decode(bytes, limits: .message)
        check(v.encoded() == bytes, "decoded, but re-encodes to other bytes")
        check(depth(v) <= BencodeLimits.message.maxDepth + 1, "decoded deeper than the limit")
        whole = v
    } catch {
        oneLine(error)
    }

    do {
        let (v, end) = try BencodeDecoder.decodePrefix(bytes, limits: .message)
        check(end > 0 && end <= bytes.count, "decodePrefix ended at \(end) of \(bytes.count)")
        check(v.encoded() == Array(bytes[..<end]), "a prefix re-encodes to other bytes")
        if end == bytes.count { check(whole == v, "decodePrefix and decode disagree") }
    } catch {
        oneLine(error)
        check(whole == nil, "decode accepted what decodePrefix refused")
    }

    do {
        let (dict, spans) = try BencodeDecoder.decodeTopLevelDictionary(bytes, limits: .message)
        check(whole == .dictionary(dict), "decodeTopLevelDictionary and decode disagree")
        check(spans.count == dict.count, "\(spans.count) spans for \(dict.count) keys")
        for e in dict.entries {
            guard let span = spans[e.key] else { fail("no span for a key") }
            check(span.lowerBound >= 0 && span.upperBound <= bytes.count, "span out of range")
            let again = try? BencodeDecoder.decode(Array(bytes[span]), limits: .message)
            check(again == e.value, "a span does not hold its value")
        }
    } catch {
        oneLine(error)
        if case .dictionary = whole { fail("decode accepted a dictionary that decodeTopLevelDictionary refused") }
    }

    if let lenient = try? BencodeDecoder.decodeTopLevelDictionary(bytes, limits: .message, requireSortedKeys: false) {
        if case .dictionary(let d) = whole { check(lenient.0 == d, "lenient mode reads a sorted dictionary differently") }
    } else if case .dictionary = whole {
        fail("lenient mode refused what strict mode accepted")
    }
    return 0
}
