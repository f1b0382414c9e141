import ArgumentParser
import Bencode
import DHTProtocol
import Hashing
import Metainfo
import Names
import Signing
import WebseedKit

/// DHT options shared by `seed`, `get`, `gateway` and `dht`.
struct DHTOptions: ParsableArguments {
    @Flag(name: .customLong("no-dht"), help: "Run no DHT node.")
    var noDHT = false

    @Option(name: .customLong("dht-bootstrap"), help: "Join the DHT through this node (HOST:PORT) instead of the public routers; repeatable.")
    var bootstrap: [String] = []

    @Option(name: .customLong("dht-port"), help: "UDP port of the DHT node (default: the peer port, shared with it).")
    var port: Int?

    /// nil with --no-dht.
    func settings() throws -> EngineConfiguration.DHT? {
        guard !noDHT else { return nil }
        var settings = EngineConfiguration.DHT()
        settings.bootstrap = try bootstrap.map { text in
            let (host, port) = try parseHostPort(text, option: "--dht-bootstrap")
            return (host, port, text)
        }
        if let port, !(0...65535).contains(port) { throw ValidationFailure("invalid --dht-port \(port)") }
        settings.port = port
        return settings
    }
}

struct DHTCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dht",
        abstract: "Run a mainline DHT node on its own: look up peers of torrents, announce them.",
        discussion: """
        HASH is 40 hex digits (a v1 info hash or the first 20 bytes of a v2 one) or a magnet link \
        (its btih and truncated btmh hashes). The node id and known nodes are kept in the state \
        directory and reused.
        """
    )

    @Option(help: "UDP address, HOST:PORT (default 0.0.0.0:6881; port 0 picks any).")
    var listen: String = "0.0.0.0:6881"

    @OptionGroup var dht: DHTOptions

    @Option(name: .customLong("state-dir"), help: "Where the node id and routing table are kept (default: ~/.local/share/webseed).")
    var stateDir: String?

    @Flag(help: "Never contact the public DHT routers; join only through --dht-bootstrap.")
    var offline = false

    @Option(help: "Look up peers of HASH; repeatable.")
    var lookup: [String] = []

    @Option(help: "Announce HASH:PORT (this host, TCP port PORT); repeatable.")
    var announce: [String] = []

    @Flag(name: .customLong("exit-after-lookups"), help: "Exit 0 once every lookup found a peer (1 if --timeout passes first).")
    var exitAfterLookups = false

    @Option(help: "With --exit-after-lookups: give up after this many seconds (default 30).")
    var timeout: Double = 30

    @Option(help: ArgumentHelp("Run N nodes in this process, node i joining through node i-1 (for measurements).", visibility: .hidden))
    var nodes: Int = 1

    @Flag(help: "Log events as JSON lines instead of text.")
    var json = false

    @Option(name: .customLong("get-item"), help: ArgumentHelp("Read the BEP 44 item of KEY (64 hex digits) or KEY:SALT once; repeatable.", visibility: .hidden))
    var getItems: [String] = []

    @Option(name: .customLong("put-item"), help: ArgumentHelp("Put a BEP 44 item signed by the key in FILE (see --item-value).", visibility: .hidden))
    var putItem: String?

    @Option(name: .customLong("item-value"), help: ArgumentHelp("With --put-item: the value, put as a bencoded string.", visibility: .hidden))
    var itemValue = ""

    @Option(name: .customLong("item-site"), help: ArgumentHelp("With --put-item: put the site record of this .torrent (its BEP 46 ih and v2 hash) as the value.", visibility: .hidden))
    var itemSite: String?

    @Option(name: .customLong("item-ih"), help: ArgumentHelp("With --item-site: this ih (40 hex digits) instead of the torrent's (a record that does not match).", visibility: .hidden))
    var itemIH: String?

    @Option(name: .customLong("item-bencoded"), help: ArgumentHelp("With --put-item: the value as bencoded bytes in hex (any value, e.g. a site record; instead of --item-value).", visibility: .hidden))
    var itemBencoded: String?

    @Option(name: .customLong("item-salt"), help: ArgumentHelp("With --put-item: the salt (text).", visibility: .hidden))
    var itemSalt = ""

    @Option(name: .customLong("item-seq"), help: ArgumentHelp("With --put-item: the sequence number.", visibility: .hidden))
    var itemSeq: Int64 = 1

    func run() async throws {
        try await reportingErrors {
            guard var settings = try dht.settings() else { throw ValidationFailure("--no-dht leaves nothing to run") }
            let (host, port) = try parseHostPort(listen, option: "--listen")
            if nodes > 1 {
                guard nodes <= 2000 else { throw ValidationFailure("--nodes is at most 2000") }
                settings.nodes = nodes
            }
            settings.lookups = try lookup.flatMap { try Self.hashes($0) }
            settings.announces = try announce.flatMap { text -> [(hash: NodeID, port: UInt16)] in
                guard let colon = text.lastIndex(of: ":"), let p = UInt16(text[text.index(after: colon)...]), p > 0 else {
                    throw ValidationFailure("invalid --announce '\(text)': use HASH:PORT")
                }
                return try Self.hashes(String(text[..<colon])).map { ($0, p) }
            }
            settings.itemGets = try getItems.map { text in
                let (hex, salt) = text.firstIndex(of: ":").map { (String(text[..<$0]), String(text[text.index(after: $0)...])) } ?? (text, "")
                guard let bytes = HexCoding.decode(hex), let key = try? Ed25519PublicKey(bytes: bytes) else {
                    throw ValidationFailure("invalid --get-item '\(text)': use 64 hex digits of a public key, then optionally :SALT")
                }
                return DHTItemGet(key: key, salt: Array(salt.utf8))
            }
            if let putItem {
                let key = try KeyFile.load(putItem)
                var value = try itemSite.map(siteRecord) ?? BValue.string(itemValue)
                if let itemBencoded {
                    guard let bytes = HexCoding.decode(itemBencoded.lowercased()), let decoded = try? BencodeDecoder.decode(bytes) else {
                        throw ValidationFailure("invalid --item-bencoded: give the hex of one bencoded value")
                    }
                    value = decoded
                }
                settings.itemPuts = [try MutableItem(signing: value, seq: itemSeq, salt: Array(itemSalt.utf8), with: key)]
            }
            settings.exitAfterLookups = exitAfterLookups
            settings.timeout = timeout
            var configuration = EngineConfiguration(listen: .init(host: host, port: port, text: listen), stateDirectory: stateDir ?? defaultStateDirectory())
            configuration.dht = settings
            configuration.offline = offline
            configuration.json = json
            try await Engine(configuration).run()
        }
    }

    /// The value naming the torrent at `path` (`--item-site`), its ih replaced by `--item-ih`.
    private func siteRecord(_ path: String) throws -> BValue {
        guard let record = SiteRecord(metainfo: try readTorrent(path)) else { throw ValidationFailure("\(path) is a v1 torrent; a name points at a v2 or hybrid one") }
        guard let itemIH else { return record.value }
        guard let ih = HexCoding.decode(itemIH.lowercased()), let forged = try? SiteRecord(ih: ih, v2: record.v2) else {
            throw ValidationFailure("invalid --item-ih '\(itemIH.prefix(80))': use 40 hex digits")
        }
        return forged.value
    }

    /// 40 hex digits, or a magnet's hashes (btih, and btmh truncated to 20 bytes).
    static func hashes(_ text: String) throws -> [NodeID] {
        if text.lowercased().hasPrefix("magnet:") {
            let m: MagnetLink
            do { m = try MagnetLink(parsing: text) } catch { throw ValidationFailure("invalid magnet link: \(error)") }
            return [m.v2InfoHash.map { NodeID(truncating: $0) }, m.v1InfoHash.map { NodeID($0) }].compactMap { $0 }
        }
        guard let id = NodeID(hex: text.lowercased()) else { throw ValidationFailure("invalid hash '\(text)': use 40 hex digits or a magnet link") }
        return [id]
    }
}
