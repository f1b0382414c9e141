import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Tells systemd how the service is doing (the sd_notify(3) protocol) when a unit with
/// `Type=notify` started it: systemd puts the address of its datagram socket in
/// `NOTIFY_SOCKET`. Without that variable every call does nothing, so the engine calls it
/// unconditionally.
struct SystemdNotifier: Sendable {
    /// A path (`/run/systemd/notify`) or a name in the abstract namespace (`@…`). Other forms
    /// (systemd 254's `vsock:`) are not supported: nothing is sent.
    let socketPath: String?

    init(socketPath: String?) {
        let path = socketPath ?? ""
        self.socketPath = path.hasPrefix("/") || path.hasPrefix("@") ? path : nil
    }

    /// From this process's `NOTIFY_SOCKET`.
    static func fromEnvironment() -> SystemdNotifier {
        SystemdNotifier(socketPath: getenv("NOTIFY_SOCKET").map { String(cString: $0) })
    }

    /// Every listener is up: units ordered after webseed may start. `status` is what
    /// `systemctl status` shows.
    @discardableResult
    func ready(status: String) -> Bool { send("READY=1\nSTATUS=\(Self.oneLine(status))") }

    /// Shutdown has started (mappings removed and records flushed next).
    @discardableResult
    func stopping() -> Bool { send("STOPPING=1") }

    /// One datagram, sent without waiting: a message must never hold up start-up or
    /// shutdown. systemd's socket has room for far more than the two this process sends;
    /// if one is lost all the same, systemd sees a start that timed out, not a hang here.
    private func send(_ message: String) -> Bool {
        guard let socketPath else { return false }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socketPath.utf8)
        // The abstract namespace: a leading NUL instead of '@', and no terminating NUL.
        let abstract = path.first == UInt8(ascii: "@")
        if abstract { path[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path)
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + path.count + (abstract ? 0 : 1))

        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) { a in
            a.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL), sa, length) }
            }
        }
        return sent == bytes.count
    }

    /// A STATUS= value ends at the first newline: keep it on one line.
    private static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }
}

/// The engine's last service, outside the start-up order: says READY=1 once every service
/// has started (the listeners are up and the sites verified: the moment the `ready` event
/// is written), and STOPPING=1 as soon as shutdown starts. Being last, it is the first
/// service a graceful shutdown reaches.
struct SystemdNotice: Service {
    let notifier: SystemdNotifier
    let order: StartupOrder
    /// How many services must have started.
    let services: Int
    let status: @Sendable () -> String

    func run() async {
        let order = self.order, services = self.services
        let started = (try? await cancelWhenGracefulShutdown { try await order.wait(untilStarted: services) }) != nil
        if started {
            notifier.ready(status: status())
            try? await gracefulShutdown()
        }
        notifier.stopping()
    }
}
