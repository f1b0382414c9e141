import ArgumentParser
import FoundationEssentials
import Metainfo
import Names
import WebseedKit

#if canImport(Glibc)
import Glibc
#endif

struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Fetch a site from the swarm, verifying every piece, then keep seeding it.",
        discussion: """
        SOURCE is a magnet link (btmh and/or btih; its x.pe peers are used), a .torrent file, or a \
        site name: its k-… label or its BEP 46 magnet (xs=urn:btpk:…). \
        With a magnet, the torrent's metadata comes from peers and is checked against the info \
        hash; piece layers come from hash requests and are checked against each file's pieces \
        root. Every piece is verified before it is written, counted or offered to other peers; \
        a peer that sends bad data is disconnected and banned. Files are written in place under \
        DIR; an interrupted download resumes where it stopped (run the same command again).

        A name is resolved through the DHT (the highest signed seq wins) and the torrent it \
        names is used only once its metadata matched the item. Without --exit-when-done, DIR \
        (default: ./<k-name>) follows the name: every --name-refresh seconds it is looked up \
        again and a newer version is downloaded into the state directory, taking unchanged \
        files from the current one, then moved into DIR file by file (one rename each); files \
        the new version no longer has are deleted, unchanged files and anything else in DIR \
        are not touched.
        """
    )

    @Argument(help: "A magnet link, a .torrent file, or a site name (k-… or magnet:?xs=urn:btpk:…).")
    var source: String

    @Option(name: .short, help: "Where the site's files go (default: ./<torrent name>). It may hold an earlier download of the same torrent, nothing else.")
    var output: String?

    @Option(name: .customLong("peer"), help: "Connect to this peer (HOST:PORT); repeatable.")
    var peers: [String] = []

    @Option(help: "Address to listen on for peers, HOST:PORT (default *:6881: every IPv4 and IPv6 address; [::1]:P is IPv6 only, 127.0.0.1:P IPv4 only; the next ports are tried if it is taken; port 0 picks any).")
    var listen: String = "*:6881"

    @Option(name: .customLong("state-dir"), help: "Where resume records and fetched torrents live (default: ~/.local/share/webseed).")
    var stateDir: String?

    @Flag(help: offlineHelp)
    var offline = false

    @Flag(name: .customLong("exit-when-done"), help: "Exit as soon as every file is written and verified, instead of seeding on.")
    var exitWhenDone = false

    @Option(help: "Give up when nothing arrives for this many seconds while downloading (default 60).")
    var timeout: Double = 60

    @Option(name: .customLong("name-refresh"), help: "With a name: look it up again every SECONDS for a newer version (default 60).")
    var nameRefresh: Double = 60

    @Flag(help: "Hash what is on disk again instead of trusting the resume record.")
    var recheck = false

    @OptionGroup var dht: DHTOptions

    @OptionGroup var peerSources: PeerSourceOptions

    @OptionGroup var webSeedOptions: WebSeedOptions

    @Flag(help: "Log events as JSON lines instead of text.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            let (host, port) = try parseHostPort(listen, option: "--listen")
            let targets = try peers.map { try parseHostPort($0, option: "--peer") }
            guard timeout > 0, timeout <= 86_400 else { throw ValidationFailure("--timeout must be between 0 and 86400 seconds") }
            guard nameRefresh >= 1, nameRefresh <= 86_400 else { throw ValidationFailure("--name-refresh must be between 1 and 86400 seconds") }
            let name = SiteName.parse(source)
            let (magnet, metainfo) = name == nil ? try parseSource(source) : (nil, nil)
            var fetch = EngineConfiguration.Fetch(magnet: magnet, metainfo: metainfo)
            if let name {
                guard !dht.noDHT else { throw ValidationFailure("a site name is resolved through the DHT; drop --no-dht") }
                fetch.name = name
                fetch.nameRefresh = nameRefresh
            }
            fetch.output = output
            fetch.timeout = timeout
            fetch.recheck = recheck
            fetch.exitWhenDone = exitWhenDone
            fetch.progressLine = !json && isatty(STDOUT_FILENO) == 1
            var configuration = EngineConfiguration(listen: .init(host: host, port: port, text: listen), stateDirectory: stateDir ?? defaultStateDirectory())
            configuration.fetch = fetch
            configuration.peers = targets.map { (host: $0.0, port: $0.1) }
            configuration.offline = offline
            configuration.json = json
            configuration.dht = try dht.settings()
            peerSources.apply(to: &configuration)
            try webSeedOptions.apply(to: &configuration)
            try await Engine(configuration).run()
        }
    }

    private func parseSource(_ text: String) throws -> (MagnetLink?, Metainfo?) {
        if text.lowercased().hasPrefix("magnet:") {
            do { return (try MagnetLink(parsing: text), nil) } catch {
                throw ValidationFailure("invalid magnet link: \(error.description)")
            }
        }
        var isDir = false
        guard FileManager.default.fileExists(atPath: text, isDirectory: &isDir) else {
            throw ValidationFailure("not a magnet link or a .torrent file: '\(text)' (no such file)")
        }
        guard !isDir else { throw ValidationFailure("\(text) is a directory; give a magnet link or a .torrent file") }
        return (nil, try readTorrent(text))
    }
}
