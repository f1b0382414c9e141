import Foundation
import Testing
@testable import WebseedKit

#if canImport(Glibc)
import Glibc
#endif

/// sd_notify's datagrams, received on a socket bound here as systemd binds its own.
@Suite struct SystemdNotifierTests {
    /// A datagram socket bound to `name` (a leading '@': the abstract namespace); returns its fd.
    func bind(_ name: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(name.utf8)
        let abstract = path.first == UInt8(ascii: "@")
        if abstract { path[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + path.count + (abstract ? 0 : 1))
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) } }
        try #require(fd >= 0 && bound == 0)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    func receive(_ fd: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n < 0 ? nil : String(decoding: buffer.prefix(n), as: UTF8.self)
    }

    @Test(arguments: ["path", "abstract"])
    func readyAndStopping(kind: String) throws {
        let name = kind == "path" ? NSTemporaryDirectory() + "webseed-notify-\(UUID().uuidString.prefix(8))" : "@webseed-notify-\(UUID().uuidString)"
        let fd = try bind(name)
        defer {
            close(fd)
            if kind == "path" { unlink(name) }
        }
        let notifier = SystemdNotifier(socketPath: name)
        #expect(notifier.ready(status: "seeding 1 site;\npeers on port 6881"))
        #expect(receive(fd) == "READY=1\nSTATUS=seeding 1 site; peers on port 6881", "STATUS= stays on one line")
        #expect(notifier.stopping())
        #expect(receive(fd) == "STOPPING=1")
    }

    @Test func outsideSystemdNothingIsSent() {
        #expect(!SystemdNotifier(socketPath: nil).ready(status: "x"))
        #expect(!SystemdNotifier(socketPath: "").stopping())
        #expect(!SystemdNotifier(socketPath: "vsock:2:1234").stopping(), "not a form this notifier speaks")
        #expect(!SystemdNotifier(socketPath: "/nonexistent/notify").stopping())
    }
}
