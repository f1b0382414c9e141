import DHTProtocol
import Metainfo
import Signing

/// Everything the engine needs, gathered by a command from its options. Which parts are
/// set decides which services run: `seed` sets `seed` (and usually `gateway`), `get` sets
/// `fetch`, `gateway` sets `gateway` with sources, `dht` sets only `dht` and no peer listener.
public struct EngineConfiguration: Sendable {
    public struct HostPort: Sendable {
        public var host: String
        public var port: Int
        /// As the user wrote it (for error messages).
        public var text: String
        public init(host: String, port: Int, text: String) {
            self.host = host
            self.port = port
            self.text = text
        }
    }

    /// Sites to verify (or package) and seed.
    public struct Seed: Sendable {
        /// Site directories (packaged as `create` does, the torrent kept in the state
        /// directory) or .torrent files whose files are in `data`.
        public var sources: [String]
        public var data: String?
        /// The torrent's "created by" for packaged directories.
        public var createdBy: String
        public var recheck = false
        public var uploadSlots = 8
        public var maxPeers = 200
        /// Draw a status line on a terminal.
        public var statusLine = false
        /// `--key`: publish the one site directory under this key's name (a BEP 44 item
        /// naming its torrent, BEP 46), put again before DHT nodes would drop it.
        public var key: Ed25519PrivateKey?
        /// `--watch`: package and publish each change of the directory as the next version.
        public var watch = false
        /// Seconds a replaced version keeps seeding, so visitors mid-page-load finish it.
        public var grace: Double = 120
        /// Seconds between puts of the same item (BEP 44 nodes may drop an item after 2 h).
        public var republish: Double = 30 * 60
        public init(sources: [String], createdBy: String) {
            self.sources = sources
            self.createdBy = createdBy
        }
    }

    /// One torrent to download (`get`), or a site name to follow.
    public struct Fetch: Sendable {
        public var magnet: MagnetLink?
        public var metainfo: Metainfo?
        /// A name (`k-…` or a btpk magnet): resolved through the DHT, its newest version
        /// downloaded and, without `exitWhenDone`, followed (see NameFetchSession.swift).
        public var name: (key: Ed25519PublicKey, salt: [UInt8])?
        /// Seconds between lookups of `name` once a version is in place.
        public var nameRefresh: Double = 60
        /// `info` on a name: resolve it on a DHT node of its own, say what it names, download nothing.
        public var infoOnly = false
        /// Where its files go (nil: ./<torrent name>).
        public var output: String?
        public var timeout: Double = 60
        public var recheck = false
        public var exitWhenDone = false
        /// Redraw progress in place on a terminal.
        public var progressLine = false
        public init(magnet: MagnetLink?, metainfo: Metainfo?) {
            self.magnet = magnet
            self.metainfo = metainfo
        }
    }

    /// The HTTP gateway.
    public struct Gateway: Sendable {
        public var listen: HostPort
        public var spa = false
        /// Verified mode: browsers check every byte themselves (`--verify-in-browser`).
        public var verifyInBrowser = false
        /// Other places holding the sites, for the verifying worker (`--verify-source`).
        public var verifySources: [String] = []
        /// How long a request waits for metadata or bytes (the `gateway` command's --timeout).
        public var timeout: Double = 30
        /// Sites fetched on demand (the `gateway` command); `seed` serves what it seeds.
        public var sources: [(magnet: MagnetLink?, metainfo: Metainfo?)] = []
        /// Names (`k-…`, canonical) followed from the start (the `gateway` command); any other
        /// name is followed from its first request.
        public var names: [String] = []
        /// Seconds between DHT lookups of a name served (`--name-refresh`).
        public var nameRefresh: Double = 60
        /// HTTP connections open at once (`--max-connections`).
        public var maxConnections = 512
        public init(listen: HostPort) { self.listen = listen }
    }

    /// The mainline DHT node. `bootstrap` replaces the public routers when given.
    public struct DHT: Sendable {
        public var bootstrap: [(host: String, port: Int, text: String)] = []
        /// Its own UDP port (nil: the peer port's UDP side, shared).
        public var port: Int?
        /// The `dht` command: hashes to look up and to announce (with a TCP port).
        public var lookups: [NodeID] = []
        public var announces: [(hash: NodeID, port: UInt16)] = []
        /// The `dht` command: BEP 44 items to read and to put once (see DHTItems.swift).
        public var itemGets: [DHTItemGet] = []
        public var itemPuts: [MutableItem] = []
        /// Exit once every lookup found a peer, failing after `timeout` seconds.
        public var exitAfterLookups = false
        public var timeout: Double = 30
        /// More than 1: that many nodes in this process, chained (for measurements).
        public var nodes = 1
        public init() {}
    }

    /// Router port mapping (UPnP IGD, then NAT-PMP).
    public struct PortMapping: Sendable {
        public var lease = 3600
        public init() {}
    }

    public var seed: Seed?
    public var fetch: Fetch?
    public var gateway: Gateway?
    public var dht: DHT?
    public var portMapping: PortMapping?
    /// Where peers connect (TCP, and UDP on the same port); for `dht`, the node's UDP address.
    public var listen: HostPort
    /// Peers to connect out to (HOST:PORT), for every torrent.
    public var peers: [(host: String, port: Int)] = []
    /// `--tracker URL`s announced to besides each torrent's own (each its own tier).
    public var trackers: [String] = []
    /// `--web-seed URL`s (BEP 19) downloaded from besides each torrent's `url-list` and magnet's `ws=`.
    public var webSeeds: [String] = []
    /// Seconds before a web seed dropped for a reason that may pass is tried again (0: never).
    public var webSeedRetry: Double = 30
    /// Local service discovery (BEP 14); it also needs a peer listener the LAN can reach and
    /// no `--offline` (`--no-lsd` turns it off).
    public var localDiscovery = true
    public var offline = false
    /// Packaged sites, resume records, downloads and the DHT state live here.
    public var stateDirectory: String
    /// Events as JSON lines instead of text.
    public var json = false

    public init(listen: HostPort, stateDirectory: String) {
        self.listen = listen
        self.stateDirectory = stateDirectory
    }
}
