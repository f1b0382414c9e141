import Locking
import Swarm

/// A peer's address as peer sources report it.
public struct PeerAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Something that finds peers of torrents and tells others about this host: the DHT today;
/// trackers, local discovery and PEX are the next ones. A torrent is named by its 20-byte
/// hashes (the truncated v2 hash, and the v1 hash of a hybrid). A source is also an
/// `EngineService`: it calls `context.add(self)` before `started()`, and from then on the
/// engine announces sites and looks up downloads on it; what it finds goes to the
/// `PeerDialer`, never straight to the swarm.
protocol PeerSource: Sendable {
    /// Says, now and from time to time, that this host has the torrent at TCP `port`.
    /// Announcing again replaces the port (a router mapping moved it).
    func announce(_ hashes: [[UInt8]], port: Int)
    /// Stops saying it (the torrent is no longer seeded: a replaced version of a site).
    func withdraw(_ hashes: [[UInt8]])
    /// Looks for peers of the torrent, handing each batch to `found` while it returns true.
    func lookup(_ hashes: [[UInt8]], found: @escaping @Sendable ([PeerAddress]) -> Bool)
}

/// The one place peers from every source come to: each address is dialled once per
/// target (the swarm keeps retrying a dialled peer on its own).
final class PeerDialer: Sendable {
    enum Target: Sendable {
        /// Every torrent being seeded and every download (`--peer`).
        case everything
        case download(FetchHandle)
    }

    private let seeder: Seeder
    private let dialled = Locked<Set<String>>([])
    /// The first addresses each download was offered (a name's next version asks them first).
    private let offered = Locked<[ObjectIdentifier: [PeerAddress]]>([:])
    static let rememberedPerDownload = 32

    init(seeder: Seeder) { self.seeder = seeder }

    /// Addresses offered to `handle`'s download so far (at most `rememberedPerDownload`).
    func peers(offeredTo handle: FetchHandle) -> [PeerAddress] {
        offered.withLock { $0[ObjectIdentifier(handle)] ?? [] }
    }

    func offer(_ peers: [PeerAddress], to target: Target) {
        let key: String
        switch target {
        case .everything: key = "*"
        case .download(let handle): key = "\(ObjectIdentifier(handle))"
        }
        let fresh = dialled.withLock { set in peers.filter { set.insert(key + " " + $0.description).inserted } }
        if case .download(let handle) = target, !fresh.isEmpty {
            offered.withLock { o in
                let known = o[ObjectIdentifier(handle), default: []]
                if known.count < Self.rememberedPerDownload {
                    o[ObjectIdentifier(handle)] = known + fresh.prefix(Self.rememberedPerDownload - known.count)
                }
            }
        }
        for p in fresh {
            switch target {
            case .everything: seeder.connect(host: p.host, port: p.port)
            case .download(let handle): seeder.connect(host: p.host, port: p.port, for: handle)
            }
        }
    }
}
