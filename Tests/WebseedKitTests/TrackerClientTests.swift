import Locking
import Foundation
import Testing
@testable import WebseedKit

#if canImport(Glibc)
import Glibc
#endif

/// An HTTP tracker shaped like opentracker: it answers one request per connection with
/// `HTTP/1.1 200 OK` and no `Connection: close`, reads nothing more from that connection, and
/// closes it a moment later (`linger`). A client that pools the connection and sends its next
/// announce on it loses that announce.
final class OneShotTracker: Sendable {
    let port: Int
    private let fd: Int32
    /// How many announces were answered.
    let answered = Locked(0)
    /// Request heads it read (for messages).
    let heads = Locked<[String]>([])

    init(linger: Double = 1.0) throws {
        let sock = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(sock, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(sock, 16) == 0 else { close(sock); throw POSIXError(.EADDRINUSE) }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(sock, $0, &len) } }
        fd = sock
        port = Int(UInt16(bigEndian: addr.sin_port))
        Thread { [self] in
            while true {
                let c = accept(sock, nil, nil)
                if c < 0 { return }
                Thread { self.serve(c, linger: linger) }.start()
            }
        }.start()
    }

    private func serve(_ c: Int32, linger: Double) {
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var head: [UInt8] = []
        var b: UInt8 = 0
        while !head.ends(with: Array("\r\n\r\n".utf8)) {
            if recv(c, &b, 1, 0) != 1 { close(c); return }
            head.append(b)
        }
        heads.withLock { $0.append(String(decoding: head, as: UTF8.self)) }
        let body = Array("d8:intervali1800e5:peers0:e".utf8)
        let response = Array("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body
        _ = response.withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        answered.withLock { $0 += 1 }
        usleep(useconds_t(linger * 1_000_000))
        close(c)
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}

private extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}

@Suite struct TrackerClientTests {
    final class Output: Sendable {
        let lines = Locked<[String]>([])
        var console: Console { Console { _, text in self.lines.withLock { $0.append(text) } } }
        func events(_ name: String) -> [String] { lines.withLock { $0.filter { $0.contains("\"event\":\"\(name)\"") } } }
    }

    func torrent(_ name: String, hash: UInt8, url: String) -> TrackedTorrent {
        TrackedTorrent(name: name, hashes: [[UInt8](repeating: hash, count: 20)], tiers: [[url]],
                       port: { 6881 }, stats: { (0, 0, 0) }, found: nil)
    }

    /// Waits until `cond` holds, at most `seconds`. The bound only guards against a hang: under
    /// ThreadSanitizer every suite runs at once and keeps both cores busy for about 40 s, and
    /// the announce's tasks wait their turn on the cooperative pool; CI saw a first announce
    /// arrive more than 30 s after the test began (and succeed).
    func eventually(_ seconds: Double, _ cond: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while ContinuousClock.now < deadline {
            if cond() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return cond()
    }

    /// The second announce to a tracker that closes each connection after one answer (as
    /// opentracker does) must not go out on the first one's pooled connection: every HTTP
    /// announce says `Connection: close`, and both succeed.
    @Test func announcesToAOneRequestPerConnectionTrackerAllSucceed() async throws {
        let tracker = try OneShotTracker(linger: 1.0)
        defer { tracker.stop() }
        let out = Output()
        let client = TrackerClient(log: EventSink(json: true, console: out.console), offline: true)
        let url = "http://127.0.0.1:\(tracker.port)/announce"
        client.track(torrent("one", hash: 1, url: url))
        #expect(await eventually(120) { out.events("tracker_announced").count == 1 })
        // Within the tracker's linger: a pooled connection would still look open.
        client.track(torrent("two", hash: 2, url: url))
        #expect(await eventually(120) { out.events("tracker_announced").count + out.events("tracker_failed").count >= 2 })
        #expect(out.events("tracker_failed").isEmpty, "\(out.events("tracker_failed"))")
        #expect(out.events("tracker_announced").count == 2)
        #expect(tracker.heads.withLock { $0.allSatisfy { $0.lowercased().contains("connection: close") } },
                "\(tracker.heads.withLock { $0 })")
        await client.stop()
    }
}
