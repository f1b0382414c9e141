import ArgumentParser
import Metainfo
import Names
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

        A SOURCE may also be a site's name (k-…, or its magnet:?xs=urn:btpk:… link): it is \
        followed through the DHT from the start. Any name opened at http://<name>.localhost:PORT/ \
        (or /name/<name>/) is followed from its first request: the newest version whose torrent \
        matches its signed item is served, looked up again every --name-refresh seconds and \
        when a path is missing.
        """
    )

    @Argument(help: "Magnet links or .torrent files of sites to serve.")
    var sources: [String] = []

    @Option(help: "HTTP address, HOST:PORT (default 127.0.0.1:8080; the next ports are tried if it is taken; port 0 picks any).")
    var listen: String = "127.0.0.1:8080"

    @Option(name: .customLong("peer-listen"), help: "BitTorrent address, HOST:PORT (default *:6881: every IPv4 and IPv6 address).")
    var peerListen: String = "*:6881"

    @Option(name: .customLong("peer"), help: "A peer to fetch sites from (HOST:PORT); repeatable.")
    var peers: [String] = []

    @Option(name: .customLong("state-dir"), help: "Where fetched sites and their records live (default: ~/.local/share/webseed).")
    var stateDir: String?

    @Flag(help: offlineHelp)
    var offline = false

    @Flag(help: "Single-page apps: serve /index.html for missing paths without a file extension.")
    var spa = false

    @Flag(name: .customLong("verify-in-browser"), help: "Verified mode: each site's origin installs a service worker that checks every byte against the site id in the address before the page gets it, and keeps verified files for offline visits (see the README).")
    var verifyInBrowser = false

    @Option(name: .customLong("verify-source"), help: "With --verify-in-browser: another gateway or web server holding the sites, which the worker asks when this gateway fails (a URL prefix; {site} stands for the site id, e.g. http://{site}.localhost:8081); repeatable, tried in order.")
    var verifySources: [String] = []

    @Option(help: "How long a request waits for a site's metadata or the bytes it asked for, in seconds (default 30).")
    var timeout: Double = 30

    @Option(name: .customLong("name-refresh"), help: "Look up each name's newest version at most every SECONDS (default 60).")
    var nameRefresh: Double = 60

    @OptionGroup var dht: DHTOptions

    @OptionGroup var peerSources: PeerSourceOptions

    @OptionGroup var webSeedOptions: WebSeedOptions

    @OptionGroup var http: HTTPServerOptions

    @OptionGroup var portMapping: PortMappingOptions

    @Flag(help: "Log events as JSON lines instead of text.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            let (httpHost, httpPort) = try parseHostPort(listen, option: "--listen")
            let (peerHost, peerPort) = try parseHostPort(peerListen, option: "--peer-listen")
            let known = try peers.map { try parseHostPort($0, option: "--peer") }
            guard timeout > 0, timeout <= 3600 else { throw ValidationFailure("--timeout must be between 0 and 3600 seconds") }
            guard nameRefresh >= 1, nameRefresh <= 86_400 else { throw ValidationFailure("--name-refresh must be between 1 and 86400 seconds") }
            var parsed: [(MagnetLink?, Metainfo?)] = []
            var names: [String] = []
            for s in sources {
                if let (key, salt) = SiteName.parse(s) {
                    // A name is one DNS label: it carries a key, not a salt.
                    guard salt.isEmpty else { throw ValidationFailure("the gateway serves names without a salt (s=…); a k-… name carries only the key") }
                    names.append(SiteName.name(for: key))
                } else if s.lowercased().hasPrefix("k-") {
                    throw ValidationFailure("invalid name '\(s.prefix(80))': a name is k- and 52 base32 characters (webseed key show prints it)")
                } else if s.lowercased().hasPrefix("magnet:") {
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
            gateway.verifyInBrowser = verifyInBrowser
            gateway.verifySources = try checkVerifySources(verifySources, verifyInBrowser: verifyInBrowser)
            gateway.timeout = timeout
            try http.apply(to: &gateway)
            gateway.sources = parsed.map { (magnet: $0.0, metainfo: $0.1) }
            gateway.names = names
            gateway.nameRefresh = nameRefresh
            var configuration = EngineConfiguration(listen: .init(host: peerHost, port: peerPort, text: peerListen),
                                                    stateDirectory: stateDir ?? defaultStateDirectory())
            configuration.gateway = gateway
            configuration.peers = known.map { (host: $0.0, port: $0.1) }
            configuration.offline = offline
            configuration.json = json
            configuration.dht = try dht.settings()
            peerSources.apply(to: &configuration)
            try webSeedOptions.apply(to: &configuration)
            if !names.isEmpty, configuration.dht == nil { throw ValidationFailure("names are resolved through the DHT: drop --no-dht") }
            configuration.portMapping = portMapping.settings
            try await Engine(configuration).run()
        }
    }
}
