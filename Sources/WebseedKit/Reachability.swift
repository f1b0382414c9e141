import Locking
import PortMapping

/// Where this host tells peers to connect: the router's mapping when there is one, else
/// the local address. Made before anything binds; the peer listener fills in its port and
/// port-mapping events keep the rest current. Read by the magnet, the DHT and the status page.
final class Reachability: Sendable {
    private let local: String
    private let state = Locked<(port: Int, mapped: MappedState?)>((0, nil))

    /// `listenHost`: the peer listener's host (a wildcard is shown as this host's address).
    init(listenHost: String) {
        local = advertisedHost(listenHost)
    }

    /// The host peers on this network reach (for port-mapping messages).
    var localHost: String { local }

    func listening(port: Int) { state.withLock { $0.port = port } }

    func update(_ s: MappedState?) { state.withLock { $0.mapped = s } }

    var mapped: MappedState? { state.withLock { $0.mapped } }

    /// HOST:PORT for a magnet's x.pe.
    var peerAddress: String {
        let (port, mapped) = state.withLock { ($0.port, $0.mapped) }
        if let s = mapped, let tcp = s.externalPort(.tcp) { return "\(bracketed(s.externalAddress)):\(tcp)" }
        return "\(local):\(port)"
    }

    /// The TCP port to announce (on the DHT): the external one when mapped.
    var announcedPort: Int { state.withLock { $0.mapped?.externalPort(.tcp) ?? $0.port } }

    private func bracketed(_ host: String) -> String { host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host }
}
