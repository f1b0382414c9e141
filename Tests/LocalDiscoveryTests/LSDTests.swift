import Testing
@testable import LocalDiscovery

private let a = [UInt8](repeating: 0xAB, count: 20)
private let b = [UInt8](repeating: 0x01, count: 20)

@Suite struct LSDMessageTests {
    @Test func anAnnounceHasBEP14sForm() throws {
        let m = LSDMessage(group: .ipv4, port: 6881, hashes: [a, b], cookie: "ws1")
        #expect(String(decoding: m.encoded(), as: UTF8.self) == "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\n"
            + "Infohash: " + String(repeating: "ab", count: 20) + "\r\nInfohash: " + String(repeating: "01", count: 20)
            + "\r\ncookie: ws1\r\n\r\n\r\n")
        #expect(String(decoding: LSDMessage(group: .ipv6, port: 1, hashes: [a], cookie: nil).encoded(), as: UTF8.self)
            .contains("Host: [ff15::efc0:988f]:6771\r\n"))
        #expect(try LSDMessage.parse(m.encoded(), group: .ipv4) == m)
    }

    @Test func libtorrentsAnnounceIsRead() throws {
        // As libtorrent 2.0 writes it: upper-case hex, its own cookie, no trailing blank lines needed.
        let text = "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 51413\r\nInfohash: "
            + String(repeating: "AB", count: 20) + "\r\ncookie: 7f3a\r\n\r\n\r\n"
        let m = try LSDMessage.parse(Array(text.utf8), group: .ipv4)
        #expect(m.port == 51413 && m.hashes == [a] && m.cookie == "7f3a")
    }

    @Test(arguments: [
        "GET / HTTP/1.1\r\nPort: 1\r\nInfohash: " + String(repeating: "00", count: 20) + "\r\n\r\n",
        "BT-SEARCH * HTTP/1.1\r\nInfohash: " + String(repeating: "00", count: 20) + "\r\n\r\n",
        "BT-SEARCH * HTTP/1.1\r\nPort: 0\r\nInfohash: " + String(repeating: "00", count: 20) + "\r\n\r\n",
        "BT-SEARCH * HTTP/1.1\r\nPort: 70000\r\nInfohash: " + String(repeating: "00", count: 20) + "\r\n\r\n",
        "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n\r\n",
        "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: " + String(repeating: "0g", count: 20) + "\r\n\r\n",
        "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: abc\r\n\r\n",
        "BT-SEARCH * HTTP/1.1\r\nPort 1\r\n\r\n",
        "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n" + String(repeating: "X-Pad: 0123456789\r\n", count: 80),
    ])
    func whatIsNotAnAnnounceIsRefused(_ text: String) {
        #expect(throws: LSDError.self) { try LSDMessage.parse(Array(text.utf8), group: .ipv4) }
    }

    /// Found by the lsd fuzz target: a value holding a lone "\n" (lines end in "\r\n") went into the error.
    @Test func errorsQuotingThePacketStayOneLine() throws {
        let text = "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: " + String(repeating: "01", count: 15) + "AB\nAB\r\n\r\n"
        do {
            _ = try LSDMessage.parse(Array(text.utf8), group: .ipv4)
            Issue.record("parsed")
        } catch {
            #expect(!error.description.contains("\n") && error.description.contains("AB?AB"))
        }
    }

    /// Found by the lsd fuzz target: a cookie cut at 64 characters ending in tabs did not
    /// read back the same from the packet it encodes to.
    @Test func aLongCookieIsCutAndTrimmedSoItReadsBackTheSame() throws {
        let text = "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: " + String(repeating: "ab", count: 20)
            + "\r\ncookie: " + String(repeating: "c", count: 60) + String(repeating: "\t", count: 10) + "x\r\n\r\n"
        let m = try LSDMessage.parse(Array(text.utf8), group: .ipv4)
        #expect(m.cookie == String(repeating: "c", count: 60))
        #expect(try LSDMessage.parse(m.encoded(), group: .ipv4) == m)
    }

    @Test func aFullPacketStaysUnder1400Bytes() {
        let per = LSDMessage.hashesPerPacket(cookieLength: 16)
        let hashes = (0..<per).map { i in [UInt8](repeating: UInt8(i), count: 20) }
        let m = LSDMessage(group: .ipv6, port: 65535, hashes: hashes, cookie: String(repeating: "c", count: 16))
        #expect(per >= 20 && m.encoded().count <= LSDMessage.maxSize)
    }
}

@Suite struct LSDScheduleTests {
    @Test func torrentsAreAnnouncedAtOnceThenEveryFiveMinutesAndRoundsAreAMinuteApart() {
        var s = LSDSchedule(cookie: "me")
        s.announce([a], now: 0)
        #expect(s.due(now: 0) == [[a]])
        s.announce([b], now: 10)
        #expect(s.due(now: 10).isEmpty)  // a minute since the last round first
        #expect(s.nextDue == 60)
        #expect(s.due(now: 60) == [[b]])
        #expect(s.nextDue == 300)
        #expect(s.due(now: 300) == [[a]])
        #expect(s.due(now: 360) == [[b]])
    }

    @Test func manyTorrentsGoInFewPackets() {
        var s = LSDSchedule(cookie: "me")
        s.announce((0..<100).map { i in [UInt8](repeating: UInt8(i), count: 20) }, now: 0)
        let batches = s.due(now: 0)
        #expect(batches.count == (100 + LSDMessage.hashesPerPacket(cookieLength: 2) - 1) / LSDMessage.hashesPerPacket(cookieLength: 2))
        let packets = batches.map { LSDMessage(group: .ipv6, port: 65535, hashes: $0, cookie: s.cookie) }
        #expect(packets.allSatisfy { $0.encoded().count <= LSDMessage.maxSize })
        #expect(Set(batches.joined()).count == 100)
    }

    @Test func onlyWantedHashesFromOthersWithinTheRateAreTakenIn() {
        var s = LSDSchedule(cookie: "me")
        s.want([a])
        let theirs = LSDMessage(group: .ipv4, port: 1, hashes: [a, b], cookie: "them")
        #expect(s.received(theirs, from: "10.0.0.2", now: 0) == [a])
        #expect(s.received(LSDMessage(group: .ipv4, port: 1, hashes: [a], cookie: "me"), from: "10.0.0.1", now: 0).isEmpty)
        for _ in 2...LSDSchedule.maxPerSourcePerMinute { _ = s.received(theirs, from: "10.0.0.2", now: 1) }
        #expect(s.received(theirs, from: "10.0.0.2", now: 2).isEmpty)  // over the rate
        #expect(s.received(theirs, from: "10.0.0.3", now: 2) == [a])  // another source is not held back
        #expect(s.received(theirs, from: "10.0.0.2", now: 61) == [a])  // a minute later
    }
}
