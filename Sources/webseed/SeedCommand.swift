import ArgumentParser
import FoundationEssentials
import Names
import Storage
import WebseedKit

#if canImport(Glibc)
import Glibc
#endif

struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seed",
        abstract: "Seed sites to BitTorrent clients over the peer wire protocol.",
        discussion: """
        Each SOURCE is a site directory (packaged as `create` does; the torrent is kept in the \
        state directory and reused while the directory is unchanged) or a .torrent file whose \
        data is in --data. Local data is verified against the torrent before any of it is \
        served; a resume record lets the next start skip files whose size and mtime did not \
        change. Plain TCP, no encryption: clients fall back to it by themselves.
        """
    )

    @Argument(help: "Site directories or .torrent files.")
    var sources: [String]

    @Option(help: "For a .torrent source: the directory holding its files (its root).")
    var data: String?

    @Option(help: "Address to listen on, HOST:PORT (default *:6881: every IPv4 and IPv6 address; [::1]:P is IPv6 only, 127.0.0.1:P IPv4 only; the next ports are tried if it is taken; port 0 picks any).")
    var listen: String = "*:6881"

    @Option(name: .customLong("peer"), help: "Connect out to this peer (HOST:PORT); repeatable.")
    var peers: [String] = []

    @Option(name: .customLong("state-dir"), help: "Where torrents of packaged directories and resume records live (default: ~/.local/share/webseed).")
    var stateDir: String?

    @Flag(help: offlineHelp)
    var offline = false

    @Flag(help: "Re-hash everything on start instead of trusting the resume record.")
    var recheck = false

    @Option(name: .customLong("upload-slots"), help: "Peers unchoked at once (default 8).")
    var uploadSlots: Int = 8

    @Option(name: .customLong("max-peers"), help: "Most connections at once (default 200).")
    var maxPeers: Int = 200

    @Option(help: "Serve the sites over HTTP on HOST:PORT (default 127.0.0.1:8080; the next ports are tried if it is taken; port 0 picks any). With one site, http://HOST:PORT/ is its root; http://<site-id>.localhost:PORT/ always works; http://localhost:PORT/ is the status page.")
    var gateway: String = "127.0.0.1:8080"

    @Flag(name: .customLong("no-gateway"), help: "Do not serve HTTP.")
    var noGateway = false

    @Flag(help: "Single-page apps: serve /index.html for missing paths without a file extension.")
    var spa = false

    @Flag(name: .customLong("verify-in-browser"), help: "Verified mode: each site's origin installs a service worker that checks every byte against the site id in the address before the page gets it, and keeps verified files for offline visits (see the README).")
    var verifyInBrowser = false

    @Option(name: .customLong("verify-source"), help: "With --verify-in-browser: another gateway or web server holding the sites, which the worker asks when this gateway fails (a URL prefix; {site} stands for the site id, e.g. http://{site}.localhost:8081); repeatable, tried in order.")
    var verifySources: [String] = []

    @OptionGroup var http: HTTPServerOptions

    @Option(help: "Publish the site (exactly one directory) under the stable name of this key (see `webseed key`): a signed BEP 44 item on the DHT naming its torrent, put again every 30 minutes.")
    var key: String?

    @Flag(help: "With --key: package and publish each change of the directory (files added, edited, removed, renamed) as the next version, once it has been quiet for a second.")
    var watch = false

    @Option(help: "With --watch: seconds a replaced version keeps seeding, so visitors in the middle of a page load finish it (default 120).")
    var grace: Double = 120

    @OptionGroup var dht: DHTOptions

    @OptionGroup var peerSources: PeerSourceOptions

    @OptionGroup var portMapping: PortMappingOptions

    @Flag(help: "Log events as JSON lines instead of text.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            let (host, port) = try parseHostPort(listen, option: "--listen")
            let outgoing = try peers.map { try parseHostPort($0, option: "--peer") }
            guard uploadSlots >= 1, maxPeers >= 1 else { throw ValidationFailure("--upload-slots and --max-peers must be at least 1") }
            var configuration = EngineConfiguration(listen: .init(host: host, port: port, text: listen), stateDirectory: stateDir ?? defaultStateDirectory())
            var seed = EngineConfiguration.Seed(sources: sources, createdBy: "webseed \(webseedVersion)")
            seed.data = data
            seed.recheck = recheck
            seed.uploadSlots = uploadSlots
            seed.maxPeers = maxPeers
            seed.statusLine = !json && isatty(STDOUT_FILENO) == 1
            let state = stateDir ?? defaultStateDirectory()
            try checkPublishing(state: state)
            if let key { seed.key = try KeyFile.load(key) }
            seed.watch = watch
            seed.grace = grace
            configuration.seed = seed
            configuration.peers = outgoing.map { (host: $0.0, port: $0.1) }
            configuration.offline = offline
            configuration.json = json
            configuration.dht = try dht.settings()
            peerSources.apply(to: &configuration)
            configuration.portMapping = portMapping.settings
            if noGateway, verifyInBrowser { throw ValidationFailure("--verify-in-browser needs the gateway: drop --no-gateway") }
            if !noGateway {
                let (gHost, gPort) = try parseHostPort(gateway, option: "--gateway")
                var settings = EngineConfiguration.Gateway(listen: .init(host: gHost, port: gPort, text: gateway))
                settings.spa = spa
                settings.verifyInBrowser = verifyInBrowser
                settings.verifySources = try checkVerifySources(verifySources, verifyInBrowser: verifyInBrowser)
                try http.apply(to: &settings)
                configuration.gateway = settings
            }
            try await Engine(configuration).run()
        }
    }
}

extension Seed {
    /// --key, --watch and --grace together, and with the sources and the DHT: one line for
    /// whatever does not fit.
    func checkPublishing(state: String) throws {
        guard key != nil else {
            if watch { throw ValidationFailure("--watch publishes each change under a name: give --key FILE too") }
            return
        }
        guard sources.count == 1 else {
            throw ValidationFailure("--key publishes one site directory: give exactly one (got \(sources.count) sources)")
        }
        var isDir = false
        guard FileManager.default.fileExists(atPath: sources[0], isDirectory: &isDir), isDir else {
            throw ValidationFailure("--key publishes a site directory, and \(sources[0]) is not one")
        }
        if dht.noDHT { throw ValidationFailure("--key publishes the site's name on the DHT: drop --no-dht") }
        if offline, dht.bootstrap.isEmpty {
            throw ValidationFailure("--key with --offline needs --dht-bootstrap HOST:PORT: a DHT to publish the name on")
        }
        guard grace.isFinite, grace >= 0 else { throw ValidationFailure("--grace must be a number of seconds, 0 or more") }
        if watch {
            let dir = resolvedPath(sources[0]), stateDir = resolvedPath(state)
            if stateDir == dir || stateDir.hasPrefix(dir + "/") {
                throw ValidationFailure("--watch cannot keep its state inside the watched directory (\(stateDir)): give --state-dir elsewhere")
            }
        }
    }
}
