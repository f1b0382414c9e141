import Foundation
import Testing
@testable import WebseedKit

#if canImport(Glibc)
import Glibc
#endif

/// A datagram socket bound as systemd binds its notify socket, for the notifier to send to.
final class NotifySocket {
    /// A file path, or a leading '@' for the abstract namespace.
    let path: String
    private let fd: Int32

    init(abstract: Bool = false) throws {
        path = abstract ? "@webseed-notify-\(UUID().uuidString)" : NSTemporaryDirectory() + "webseed-notify-\(UUID().uuidString.prefix(8))"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if abstract { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + (abstract ? 0 : 1))
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        try #require(fd >= 0 && bound == 0)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(fd)
        if !path.hasPrefix("@") { unlink(path) }
    }

    /// The next datagram; nil after 5 s without one.
    func receive() -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n < 0 ? nil : String(decoding: buffer.prefix(n), as: UTF8.self)
    }
}

/// sd_notify's datagrams, received on a socket bound here as systemd binds its own.
@Suite struct SystemdNotifierTests {
    @Test(arguments: [false, true])
    func readyAndStopping(abstract: Bool) throws {
        let socket = try NotifySocket(abstract: abstract)
        let notifier = SystemdNotifier(socketPath: socket.path)
        #expect(notifier.ready(status: "seeding 1 site;\npeers on port 6881"))
        #expect(socket.receive() == "READY=1\nSTATUS=seeding 1 site; peers on port 6881", "STATUS= stays on one line")
        #expect(notifier.stopping())
        #expect(socket.receive() == "STOPPING=1")
    }

    @Test func outsideSystemdNothingIsSent() {
        #expect(!SystemdNotifier(socketPath: nil).ready(status: "x"))
        #expect(!SystemdNotifier(socketPath: "").stopping())
        #expect(!SystemdNotifier(socketPath: "vsock:2:1234").stopping(), "not a form this notifier speaks")
        #expect(!SystemdNotifier(socketPath: "/nonexistent/notify").stopping())
    }
}
