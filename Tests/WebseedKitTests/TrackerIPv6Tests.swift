import Locking
import Foundation
import Testing
@testable import WebseedKit

#if canImport(Glibc)
import Glibc
#endif

/// A socket on [::1] (IPv6 only), or nil when this host has no IPv6 loopback.
private func boundToLoopback6(_ type: Int32) -> (fd: Int32, port: Int)? {
    let sock = socket(AF_INET6, type, 0)
    guard sock >= 0 else { return nil }
    var addr = sockaddr_in6()
    addr.sin6_family = sa_family_t(AF_INET6)
    addr.sin6_addr = in6addr_loopback
    var len = socklen_t(MemoryLayout<sockaddr_in6>.size)
    let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(sock, $0, len) } }
    guard bound == 0 else { close(sock); return nil }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(sock, $0, &len) } }
    return (sock, Int(UInt16(bigEndian: addr.sin6_port)))
}

/// A BEP 15 tracker on [::1]: answers connect, then announces with one IPv6 peer (18 bytes).
final class UDPTracker6: Sendable {
    let port: Int
    private let fd: Int32
    let announces = Locked(0)

    init?(peer: [UInt8]) {
        guard let (sock, port) = boundToLoopback6(Int32(SOCK_DGRAM.rawValue)) else { return nil }
        fd = sock
        self.port = port
        Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 2048)
            while true {
                var from = sockaddr_in6()
                var len = socklen_t(MemoryLayout<sockaddr_in6>.size)
                let n = withUnsafeMutablePointer(to: &from) { f in
                    f.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(sock, &buffer, buffer.count, 0, $0, &len) }
                }
                if n < 16 { return }
                let action = buffer[8..<12], transaction = Array(buffer[12..<16])
                var reply: [UInt8]
                if action == [0, 0, 0, 0] {
                    reply = [0, 0, 0, 0] + transaction + [1, 2, 3, 4, 5, 6, 7, 8]
                } else {
                    announces.withLock { $0 += 1 }
                    reply = [0, 0, 0, 1] + transaction + [0, 0, 0x07, 0x08] + [0, 0, 0, 0] + [0, 0, 0, 1] + peer
                }
                _ = withUnsafePointer(to: &from) { f in
                    f.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(sock, reply, reply.count, 0, $0, len) }
                }
            }
        }.start()
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}

/// An HTTP tracker on [::1] answering each announce with one BEP 7 `peers6` entry.
final class HTTPTracker6: Sendable {
    let port: Int
    private let fd: Int32

    init?(peer: [UInt8]) {
        guard let (sock, port) = boundToLoopback6(Int32(SOCK_STREAM.rawValue)), listen(sock, 16) == 0 else { return nil }
        fd = sock
        self.port = port
        Thread {
            while true {
                let c = accept(sock, nil, nil)
                if c < 0 { return }
                var tv = timeval(tv_sec: 5, tv_usec: 0)
                setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                var head: [UInt8] = []
                var b: UInt8 = 0
                while !(head.count >= 4 && Array(head.suffix(4)) == Array("\r\n\r\n".utf8)), recv(c, &b, 1, 0) == 1 { head.append(b) }
                let body = Array("d8:intervali1800e5:peers0:6:peers618:".utf8) + peer + Array("e".utf8)
                let response = Array("HTTP/1.1 200 OK\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body
                _ = response.withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                close(c)
            }
        }.start()
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}

/// Trackers over IPv6: `udp://[::1]:P` and `http://[::1]:P/announce` are announced to (with
/// `--offline`: they are on this host), and the IPv6 peers they name are handed on.
@Suite struct TrackerIPv6Tests {
    /// [2001:db8::5]:6889 in compact form.
    let peer: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [5, 0x1a, 0xe9]

    func announce(to url: String) async -> [PeerAddress] {
        let found = Locked<[PeerAddress]>([])
        let client = TrackerClient(log: EventSink(json: true, console: Console { _, _ in }), offline: true)
        client.track(TrackedTorrent(name: "six", hashes: [[UInt8](repeating: 6, count: 20)], tiers: [[url]],
                                    port: { 6881 }, stats: { (0, 0, 1) }, found: { p in found.withLock { $0 += p } }))
        // Bounded only against a hang (see TrackerClientTests.eventually).
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline, found.withLock({ $0.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(10))
        }
        await client.stop()
        return found.withLock { $0 }
    }

    @Test func aUDPTrackerOnIPv6LoopbackNamesAnIPv6Peer() async throws {
        guard let tracker = UDPTracker6(peer: peer) else {
            Issue.record("no IPv6 loopback on this host")
            return
        }
        defer { tracker.stop() }
        let peers = await announce(to: "udp://[::1]:\(tracker.port)/announce")
        #expect(peers.map(\.port) == [6889])
        #expect(peers.first.flatMap { IPv6Text.canonical($0.host) } == "2001:db8::5")
        #expect(tracker.announces.withLock { $0 } >= 1)
    }

    @Test func anHTTPTrackerOnIPv6LoopbackNamesAnIPv6Peer() async throws {
        guard let tracker = HTTPTracker6(peer: peer) else {
            Issue.record("no IPv6 loopback on this host")
            return
        }
        defer { tracker.stop() }
        let peers = await announce(to: "http://[::1]:\(tracker.port)/announce")
        #expect(peers.map(\.port) == [6889])
        #expect(peers.first.flatMap { IPv6Text.canonical($0.host) } == "2001:db8::5")
    }
}

/// The system's text for an IPv6 address (inet_ntop), whatever form it was written in.
enum IPv6Text {
    static func canonical(_ text: String) -> String? {
        var a = in6_addr()
        guard inet_pton(AF_INET6, text, &a) == 1 else { return nil }
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &a, &out, socklen_t(out.count)) != nil else { return nil }
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
