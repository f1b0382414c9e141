import ArgumentParser
import Dispatch
import FoundationEssentials
import Gateway
import Metainfo
import NIOCore
import PortMapping
import Storage
import Swarm
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

struct GatewayCommand: ParsableCommand {
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

    @OptionGroup var portMapping: PortMappingOptions

    @Flag(help: "Log events as JSON lines instead of text.")
    var json = false

    func run() throws {
        try reportingErrors {
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
            let state = (stateDir ?? defaultStateDirectory()) + "/gateway"
            try makeDirectories(state)
            let log = EventLog(json: json)

            let stop = StopSignal()

            let seeder = Seeder { event in log.seederEvent(event) }
            let dhtService = try dht.start(on: seeder, offline: offline, state: stateDir ?? defaultStateDirectory(), report: { e in
                if let (o, text) = describeDHT(e, host: peerHost, names: [:]) { log.emitEvent(o, text: text) }
            })
            let boundPort: Int
            do {
                let address = try seeder.listen(host: peerHost, port: peerPort)
                boundPort = address.port ?? peerPort
                log.listening(host: address.ipAddress ?? peerHost, port: boundPort)
            } catch {
                seeder.shutdown()
                throw ValidationFailure("cannot listen on \(peerListen): \(error)")
            }
            let (mapper, reach) = portMapping.start(offline: offline, seeder: seeder, listenHost: peerHost, port: boundPort, log: log)
            // Fetched sites live under the state directory, one folder per site id; a
            // download fails only after an hour without any peer (the gateway keeps trying).
            let start: @Sendable (MagnetLink?, Metainfo?) -> FetchHandle = { magnet, metainfo in
                let v2 = (metainfo?.v2InfoHash ?? magnet?.v2InfoHash)!
                var options = FetchOptions(directory: state + "/" + SiteID.encode(v2), defaultParent: state, stateDirectory: state)
                options.timeout = 3600
                let handle = seeder.fetch(magnet: magnet, metainfo: metainfo, options: options) { event in
                    if case .failed(let e) = event { log.warning("site \(SiteID.encode(v2)): \(e.description)") }
                }
                var targets = known
                for pe in magnet?.peers ?? [] { if let t = try? parseHostPort(pe, option: "x.pe") { targets.append(t) } }
                for (h, p) in targets { seeder.connect(host: h, port: p, for: handle) }
                return handle
            }
            let sites = GatewaySites { magnet in FetchedSite(handle: start(magnet, nil)) }
            for (magnet, metainfo) in parsed {
                if let metainfo {
                    sites.add(FetchedSite(handle: start(nil, metainfo)), v2Hash: metainfo.v2InfoHash!)
                } else if let magnet {
                    _ = try sites.add(magnet: magnet)
                }
            }
            var options = GatewayOptions()
            options.spa = spa
            options.timeout = timeout
            options.fetchUnknownIDs = !known.isEmpty || dhtService != nil
            options.peerEndpoint = { reach.endpoint }
            let server = GatewayServer(sites: sites, options: options)
            let port: Int
            do {
                port = try runAsync { try await server.start(host: httpHost, port: httpPort) }
            } catch {
                server.stop()
                mapper?.stop()
                seeder.shutdown()
                throw ValidationFailure("cannot serve HTTP on \(listen): \(error)")
            }
            log.gateway(host: httpHost, port: port, single: false)
            for (magnet, metainfo) in parsed {
                let v2 = (metainfo?.v2InfoHash ?? magnet?.v2InfoHash)!
                log.gatewaySite(id: SiteID.encode(v2), name: metainfo?.name ?? magnet?.displayName, port: port)
            }
            log.ready(offline: offline)
            stop.wait()
            server.stop()
            mapper?.stop()
            seeder.shutdown()
            log.stopped(uploaded: 0)
        }
    }
}
