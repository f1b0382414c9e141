import Testing
@testable import Bencode

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite struct BencodeDecoding {
    @Test func decodesEveryKind() throws {
        let v = try BencodeDecoder.decode(bytes("d1:ai-42e1:bl4:spami0ee1:cd0:0:ee"))
        let d = try #require(v.dictionary)
        #expect(d["a"] == .integer(-42))
        #expect(d["b"] == .list([.string("spam"), .integer(0)]))
        #expect(d["c"]?.dictionary?[""] == .bytes([]))
    }

    @Test func krpcPingVectorRoundTrips() throws {
        let wire = bytes("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe")
        #expect(try BencodeDecoder.decode(wire).encoded() == wire)
    }

    @Test func rawBytesAreNotRequiredToBeUTF8() throws {
        let v = try BencodeDecoder.decode([UInt8(ascii: "2"), UInt8(ascii: ":"), 0xff, 0x00])
        #expect(v == .bytes([0xff, 0x00]))
        #expect(v.utf8String == nil)
    }

    @Test(arguments: [
        ("i03e", BencodeError.leadingZero(offset: 1)),
        ("i-0e", .negativeZero(offset: 1)),
        ("ie", .unexpectedByte(offset: 1, byte: UInt8(ascii: "e"))),
        ("i-e", .unexpectedByte(offset: 2, byte: UInt8(ascii: "e"))),
        ("i12", .unexpectedEnd(offset: 3)),
        ("i9223372036854775808e", .integerOverflow(offset: 1)),
        ("03:abc", .leadingZero(offset: 0)),
        ("5:abc", .stringLengthExceedsInput(offset: 0, length: 5)),
        ("99999999999999999999:a", .integerOverflow(offset: 0)),
        ("-1:a", .unexpectedByte(offset: 0, byte: UInt8(ascii: "-"))),
        ("d1:bi1e1:ai2ee", .unsortedKeys(offset: 7)),
        ("d1:ai1e1:ai2ee", .duplicateKey(offset: 7)),
        ("di1ei2ee", .nonStringKey(offset: 1)),
        ("l", .unexpectedEnd(offset: 1)),
        ("d1:a", .unexpectedEnd(offset: 4)),
        ("i1ei2e", .trailingData(offset: 3)),
        ("x", .unexpectedByte(offset: 0, byte: UInt8(ascii: "x"))),
        ("", .unexpectedEnd(offset: 0)),
    ])
    func rejectsNonCanonicalOrBrokenInput(input: String, expected: BencodeError) {
        #expect(throws: expected) { try BencodeDecoder.decode(bytes(input)) }
    }

    @Test func prefixKeysSortFirst() throws {
        // `a` < `a-b` < `a.txt` by raw bytes: canonical, so accepted.
        _ = try BencodeDecoder.decode(bytes("d1:ai1e3:a-bi2e5:a.txti3ee"))
        #expect(throws: BencodeError.unsortedKeys(offset: 17)) {
            try BencodeDecoder.decode(bytes("d1:ai1e5:a.txti3e3:a-bi2ee"))
        }
    }

    @Test func depthIsBounded() {
        let deep = String(repeating: "l", count: 200) + String(repeating: "e", count: 200)
        #expect(throws: BencodeError.depthExceeded(limit: 64)) { try BencodeDecoder.decode(bytes(deep)) }
        let ok = String(repeating: "l", count: 64) + String(repeating: "e", count: 64)
        #expect(throws: Never.self) { try BencodeDecoder.decode(bytes(ok)) }
    }

    @Test func itemCountAndSizeAreBounded() {
        let many = "l" + String(repeating: "i1e", count: 100) + "e"
        let limits = BencodeLimits(maxInputSize: 1 << 20, maxDepth: 8, maxItems: 50)
        #expect(throws: BencodeError.tooManyItems(limit: 50)) { try BencodeDecoder.decode(bytes(many), limits: limits) }
        let big = [UInt8](repeating: UInt8(ascii: "0"), count: 2_000)
        #expect(throws: BencodeError.inputTooLarge(size: 2_000, limit: 1_000)) {
            try BencodeDecoder.decode(big, limits: BencodeLimits(maxInputSize: 1_000))
        }
    }

    @Test func torrentFilesMayRelaxKeyOrderAndTrailingBytes() throws {
        let doc = bytes("d1:bi1e1:ai2ee\n")
        #expect(throws: BencodeError.unsortedKeys(offset: 7)) { try BencodeDecoder.decodeTopLevelDictionary(doc) }
        let (d, spans) = try BencodeDecoder.decodeTopLevelDictionary(doc, requireSortedKeys: false, allowTrailingData: true)
        #expect(d.keys == [bytes("a"), bytes("b")])
        #expect(spans[bytes("a")] == 10..<13)
        #expect(throws: BencodeError.duplicateKey(offset: 7)) {
            try BencodeDecoder.decodeTopLevelDictionary(bytes("d1:bi1e1:bi2ee"), requireSortedKeys: false)
        }
    }

    @Test func topLevelSpansCoverTheExactValueBytes() throws {
        let doc = bytes("d8:announce3:url4:infod4:name1:xe5:otheri7ee")
        let (dict, spans) = try BencodeDecoder.decodeTopLevelDictionary(doc)
        let span = try #require(spans[bytes("info")])
        #expect(Array(doc[span]) == bytes("d4:name1:xe"))
        #expect(dict["other"] == .integer(7))
    }

    @Test func prefixDecodingReportsWhereTheValueEnds() throws {
        let msg = bytes("d8:msg_typei1e5:piecei0ee") + [1, 2, 3]
        let (v, end) = try BencodeDecoder.decodePrefix(msg, limits: .message)
        #expect(v.dictionary?["piece"] == .integer(0))
        #expect(Array(msg[end...]) == [1, 2, 3])
    }

    @Test func everyTruncationOfAValidDocumentIsRejected() throws {
        let doc = bytes("d4:infod6:lengthi61e4:name5:a.txte3:urll3:one3:twoee")
        for n in 0..<doc.count {
            #expect(throws: BencodeError.self) { try BencodeDecoder.decode(Array(doc.prefix(n))) }
        }
        #expect(try BencodeDecoder.decode(doc).encoded() == doc)
    }
}

@Suite struct BencodeEncoding {
    @Test func dictionaryKeysComeOutInRawByteOrder() {
        var d = BDictionary()
        d["b"] = .integer(1)
        d["a.txt"] = .integer(2)
        d["a"] = .integer(3)
        d["a-b"] = .integer(4)
        d["B"] = .integer(5)
        #expect(BValue.dictionary(d).encoded() == bytes("d1:Bi5e1:ai3e3:a-bi4e5:a.txti2e1:bi1ee"))
    }

    @Test func integersAreShortest() {
        #expect(BValue.integer(0).encoded() == bytes("i0e"))
        #expect(BValue.integer(-7).encoded() == bytes("i-7e"))
        #expect(BValue.integer(Int64.max).encoded() == bytes("i9223372036854775807e"))
    }

    @Test func replacingAndRemovingKeysKeepsOrder() {
        var d = BDictionary([("z", .integer(1)), ("a", .integer(2))])
        d["z"] = .integer(3)
        d["a"] = nil
        #expect(d.keys == [bytes("z")])
        #expect(d["z"] == .integer(3))
    }
}
