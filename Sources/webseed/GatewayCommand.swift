import ArgumentParser
import Metainfo
import WebseedKit

struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Serve sites from the swarm to browsers, fetching each on demand and verifying every byte.",
        discussion: """
        Each SOURCE (a magnet link or a .torrent) is a site this gateway can serve; more can be \
        added with POST /api/sites ({"magnet":"…"} as application/json), and with --peer, any \
        site id opened at http://<site-id>.localhost:PORT/ is looked for at those peers. A site \
        is fetched on demand: the requested file first, then the rest in the background; \
        then it is seeded. Nothing is sent to a browser before it verified against the \
        site's Merkle roots. http://localhost:PORT/ shows the status page.
        """
    )

    @Argument(help: "Magnet links or .torrent files of sites to serve.")
    var sources: [String] = []

    @Option(help: "HTTP address, HOST:PORT (default 127.0.0.1:8080; the next ports are tried if it is taken; port 0 picks any).")
    var listen: String = "127.0.0.1:8080"

    @Option(name: .customLong("peer-listen"), help: "BitTorrent address, HOST:PORT (default 0.0.0.0:6881).")
    var peerListen: String = "0.0.0.0:6881"

    @Option(name: .customLong("peer"), help: "A peer to fetch sites from (HOST:PORT); repeatable.")
    var peers: [String] = []

    @Option(name: .customLong("state-dir"), help: "Where fetched sites and their records live (default: ~/.local/share/webseed).")
    var stateDir: String?

    @Flag(help: offlineHelp)
    var offline = false

    @Flag(help: "Single-page apps: serve /index.html for missing paths without a file extension.")
    var spa = false

    @Option(help: "How long a request waits for a site's metadata or the bytes it asked for, in seconds (default 30).")
    var timeout: Double = 30

    @OptionGroup var dht: DHTOptions

    @OptionGroup var peerSources: PeerSourceOptions

    @OptionGroup var portMapping: PortMappingOptions

    @Flag(help: "Log events as JSON lines instead of text.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            let (httpHost, httpPort) = try parseHostPort(listen, option: "--listen")
            let (peerHost, peerPort) = try parseHostPort(peerListen, option: "--peer-listen")
            let known = try peers.map { try parseHostPort($0, option: "--peer") }
            guard timeout > 0, timeout <= 3600 else { throw ValidationFailure("--timeout must be between 0 and 3600 seconds") }
            var parsed: [(MagnetLink?, Metainfo?)] = []
            for s in sources {
                if s.lowercased().hasPrefix("magnet:") {
                    do { parsed.append((try MagnetLink(parsing: s), nil)) } catch {
                        throw ValidationFailure("invalid magnet link: \(error)")
                    }
                } else {
                    let m = try readTorrent(s)
                    guard m.v2InfoHash != nil else { throw ValidationFailure("\(s) is a v1 torrent; the gateway serves v2 and hybrid torrents") }
                    parsed.append((nil, m))
                }
            }
            for (magnet, _) in parsed where magnet != nil && magnet!.v2InfoHash == nil {
                throw ValidationFailure("the magnet link has no v2 info hash (urn:btmh:1220…); the gateway serves v2 and hybrid torrents")
            }
            var gateway = EngineConfiguration.Gateway(listen: .init(host: httpHost, port: httpPort, text: listen))
            gateway.spa = spa
            gateway.timeout = timeout
            gateway.sources = parsed.map { (magnet: $0.0, metainfo: $0.1) }
            var configuration = EngineConfiguration(listen: .init(host: peerHost, port: peerPort, text: peerListen),
                                                    stateDirectory: stateDir ?? defaultStateDirectory())
            configuration.gateway = gateway
            configuration.peers = known.map { (host: $0.0, port: $0.1) }
            configuration.offline = offline
            configuration.json = json
            configuration.dht = try dht.settings()
            peerSources.apply(to: &configuration)
            configuration.portMapping = portMapping.settings
            try await Engine(configuration).run()
        }
    }
}
