import Testing
@testable import DHTProtocol

#if canImport(Glibc)
import Glibc
#endif

/// IPv6 addresses are written as the system writes them (RFC 5952, inet_ntop), so that one
/// peer has one text whether it came from the DHT or connected to us.
@Suite struct IPv6TextTests {
    private func ntop(_ ip: IPAddress) -> String {
        var a = in6_addr()
        withUnsafeMutableBytes(of: &a) { raw in for (i, b) in ip.bytes.enumerated() { raw[i] = b } }
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = inet_ntop(AF_INET6, &a, &out, socklen_t(out.count))
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    @Test func knownForms() {
        for (text, written) in [("::1", "::1"), ("::", "::"), ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"), ("2001:0db8::0001", "2001:db8::1"),
                                ("1:0:0:2:0:0:0:3", "1:0:0:2::3"), ("1:2:3:4:5:6:7:0", "1:2:3:4:5:6:7:0"), ("fe80::", "fe80::")] {
            #expect(IPAddress(text)?.description == written, "\(text)")
        }
    }

    @Test func everyFormMatchesInetNtop() {
        var rng = SeededGenerator(seed: 6)
        for _ in 0..<2000 {
            // Groups mostly zero, so runs of zeros of every length and place come up.
            var groups: [UInt16] = (0..<8).map { _ in Int.random(in: 0..<3, using: &rng) == 0 ? UInt16.random(in: 1...0xffff, using: &rng) : 0 }
            if Bool.random(using: &rng) { groups[Int.random(in: 0..<8, using: &rng)] = 0xffff }
            let bytes = groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
            let ip = IPAddress(bytes: bytes)!
            // inet_ntop writes an IPv4-mapped or -compatible address with a dotted tail.
            let text = ntop(ip)
            if text.contains(".") { continue }
            #expect(ip.description == text)
            #expect(IPAddress(ip.description) == ip)
        }
    }
}
