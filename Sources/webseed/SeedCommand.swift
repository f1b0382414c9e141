import ArgumentParser
import Dispatch
import FoundationEssentials
import Hashing
import Metainfo
import NIOCore
import DHTProtocol
import Gateway
import PortMapping
import Storage
import Swarm
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

struct Seed: ParsableCommand {
    static let configuration = CommandConfiguration(
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

    @Option(help: "Address to listen on, HOST:PORT (default 0.0.0.0:6881; the next ports are tried if it is taken; port 0 picks any).")
    var listen: String = "0.0.0.0:6881"

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

    @OptionGroup var dht: DHTOptions

    @OptionGroup var portMapping: PortMappingOptions

    @Flag(help: "Log events as JSON lines instead of text.")
    var json = false

    func run() throws {
        try reportingErrors {
            let (host, port) = try parseHostPort(listen, option: "--listen")
            let outgoing = try peers.map { try parseHostPort($0, option: "--peer") }
            guard uploadSlots >= 1, maxPeers >= 1 else { throw ValidationFailure("--upload-slots and --max-peers must be at least 1") }
            let state = stateDir ?? defaultStateDirectory()
            try makeDirectories(state + "/resume")
            let log = EventLog(json: json)
            // Signals are caught before anything is announced, so a SIGTERM right after
            // "ready" still shuts down gracefully.
            let stop = StopSignal()

            // Verify (or package) every source before listening: nothing unverified is served.
            var torrents: [(SeedTorrent, String?)] = []
            for source in sources {
                torrents.append(try prepare(source, state: state, log: log))
            }

            var config = SeederConfiguration()
            config.uploadSlots = uploadSlots
            config.maxPeers = maxPeers
            let seeder = Seeder(configuration: config) { event in log.seederEvent(event) }
            for (t, _) in torrents { seeder.add(t) }
            let names = Dictionary(torrents.flatMap { (t, _) in t.shortHashes.compactMap { h in NodeID(bytes: h).map { ($0, t.metainfo.name) } } },
                                   uniquingKeysWith: { a, _ in a })
            _ = try dht.start(on: seeder, offline: offline, state: state, report: { e in
                if let (o, text) = describeDHT(e, host: host, names: names) { log.emitEvent(o, text: text) }
            })
            let address: SocketAddress
            do {
                address = try seeder.listen(host: host, port: port)
            } catch {
                seeder.shutdown()
                throw ValidationFailure("cannot listen on \(listen): \(error)")
            }
            let boundPort = address.port ?? port
            log.listening(host: address.ipAddress ?? host, port: boundPort)
            // The router mapping runs beside everything else; the magnet waits for its first
            // outcome (bounded) so that it names the address peers outside can reach.
            let announced = Mutex(false)
            let (mapper, reach) = portMapping.start(offline: offline, seeder: seeder, listenHost: host, port: boundPort, log: log) { state in
                if let state, announced.withLock({ $0 }), let tcp = state.externalPort(.tcp) { seeder.announceOnDHT(port: tcp) }
            }
            var http: GatewayServer?
            var httpPort: Int?
            if !noGateway {
                let (gHost, gPort) = try parseHostPort(gateway, option: "--gateway")
                let sites = GatewaySites()
                for (t, _) in torrents { sites.add(SeededSite(torrent: t)) }
                var options = GatewayOptions()
                options.singleSiteAtRoot = true
                options.spa = spa
                options.peerEndpoint = { reach.endpoint }
                let reported = Mutex(Set<String>())
                options.onFileChanged = { site, path in
                    if reported.withLock({ $0.insert(site + "/" + path).inserted }) { log.seederEvent(.fileChanged(torrent: site, path: path)) }
                }
                let server = GatewayServer(sites: sites, options: options)
                do {
                    httpPort = try runAsync { try await server.start(host: gHost, port: gPort) }
                } catch {
                    server.stop()
                    mapper?.stop()
                    seeder.shutdown()
                    throw ValidationFailure("cannot serve HTTP on \(gateway): \(error)")
                }
                http = server
                log.gateway(host: gHost, port: httpPort!, single: torrents.count == 1)
            }
            if let mapper {
                stop.onStop { mapper.interruptWait() }
                _ = mapper.waitForFirstOutcome(timeout: 10)
            }
            // A signal during that wait: straight to shutdown, announcing nothing more.
            if !stop.stopped {
                for (t, torrentPath) in torrents {
                    let magnet = MagnetLink(metainfo: t.metainfo, peers: [reach.peerAddress])
                    log.site(t.metainfo, magnet: magnet.uri, torrent: torrentPath, gatewayPort: httpPort)
                }
                for (h, p) in outgoing { seeder.connect(host: h, port: p) }
                announced.withLock { $0 = true }
                seeder.announceOnDHT(port: reach.announcedPort)
                log.ready(offline: offline)
            }

            // Run until SIGINT or SIGTERM (caught from the start), drawing a status line on a terminal.
            let status = StatusLine(seeder: seeder, torrents: torrents.map(\.0), enabled: !json && isatty(STDOUT_FILENO) == 1)
            status.start()
            stop.wait()
            status.stop()
            http?.stop()
            mapper?.stop()
            seeder.shutdown()
            log.stopped(uploaded: torrents.reduce(0) { $0 + $1.0.uploaded })
        }
    }

    /// Verifies one source and returns it ready to seed (with the torrent's path if known).
    private func prepare(_ source: String, state: String, log: EventLog) throws -> (SeedTorrent, String?) {
        var isDir = false
        guard FileManager.default.fileExists(atPath: source, isDirectory: &isDir) else {
            throw ValidationFailure("\(source): no such file or directory")
        }
        if isDir {
            return try prepareDirectory(source, state: state, log: log)
        }
        let m = try readTorrent(source)
        guard let dataDir = data else {
            throw ValidationFailure("\(source) is a torrent: say where its files are with --data DIR")
        }
        let root = resolvedPath(dataDir)
        let resume = state + "/resume/" + resumeName(m)
        let local = LocalDataVerifier.verify(m, directory: root, resumePath: resume, recheck: recheck)
        report(local, m, log: log)
        return (SeedTorrent(metainfo: m, directory: root, data: local), resolvedPath(source))
    }

    /// A directory is packaged once; while its listing (paths, sizes, mtimes) is unchanged,
    /// the torrent kept in the state directory is reused and the resume record spares the hashing.
    private func prepareDirectory(_ source: String, state: String, log: EventLog) throws -> (SeedTorrent, String?) {
        var request = TorrentCreator.Request(directory: source)
        request.torrent.createdBy = "webseed \(webseedVersion)"
        let listing = try TorrentCreator.list(request)
        for w in listing.warnings { log.warning(w) }
        var fingerprint = Array(listing.root.utf8) + [0]
        for f in listing.files {
            fingerprint += Array(f.pathString.utf8) + [0] + Array("\(f.size) \(f.modified?.seconds ?? 0) \(f.modified?.nanoseconds ?? 0)".utf8) + [0]
        }
        let key = Digests.sha256(Array(listing.root.utf8)).hex.prefix(16)
        let siteDir = state + "/sites/\(key)"
        let torrentPath = siteDir + "/site.torrent"
        let fingerprintPath = siteDir + "/fingerprint"
        let digest = Digests.sha256(fingerprint).hex
        try makeDirectories(siteDir)
        if FileManager.default.contents(atPath: fingerprintPath).map({ String(decoding: $0, as: UTF8.self) }) == digest,
           let m = try? readTorrent(torrentPath) {
            let resume = state + "/resume/" + resumeName(m)
            let local = LocalDataVerifier.verify(m, directory: listing.root, resumePath: resume, recheck: recheck)
            report(local, m, log: log)
            return (SeedTorrent(metainfo: m, directory: listing.root, data: local), torrentPath)
        }
        request.output = torrentPath
        request.overwrite = true
        let outcome = try TorrentCreator.create(request, listing: listing)
        let local = LocalData(metainfo: outcome.metainfo, directory: listing.root, freshlyHashed: outcome.hashed, listing: listing.files)
        try? local.saveResume(metainfo: outcome.metainfo, directory: listing.root, path: state + "/resume/" + resumeName(outcome.metainfo))
        try AtomicFile.write(Array(digest.utf8), to: fingerprintPath, overwrite: true)
        log.packaged(outcome.metainfo, directory: listing.root)
        return (SeedTorrent(metainfo: outcome.metainfo, directory: listing.root, data: local), torrentPath)
    }

    private func report(_ local: LocalData, _ m: Metainfo, log: EventLog) {
        for p in local.problems { log.warning("\(m.name): \(p.description) — its pieces are not served") }
        log.verified(m, local: local)
    }

    private func resumeName(_ m: Metainfo) -> String { (m.v2InfoHash?.hex ?? m.v1InfoHash!.hex) + ".resume" }
}

func parseHostPort(_ text: String, option: String) throws -> (String, Int) {
    var host = text
    var portText = ""
    if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
        host = String(text[text.index(after: text.startIndex)..<close])
        portText = String(text[text.index(after: close)...].dropFirst())
    } else if let colon = text.lastIndex(of: ":") {
        host = String(text[..<colon])
        portText = String(text[text.index(after: colon)...])
    }
    guard !host.isEmpty, let port = Int(portText), (0...65535).contains(port) else {
        throw ValidationFailure("invalid \(option) '\(text)': use HOST:PORT, e.g. 127.0.0.1:6881")
    }
    return (host, port)
}

func defaultStateDirectory() -> String {
    if let xdg = getenv("XDG_DATA_HOME").map({ String(cString: $0) }), !xdg.isEmpty { return xdg + "/webseed" }
    let home = getenv("HOME").map { String(cString: $0) } ?? "."
    return home + "/.local/share/webseed"
}

func makeDirectories(_ path: String) throws {
    do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
        throw ValidationFailure("cannot create \(path): \(error)")
    }
}

/// The address to put in a magnet's `x.pe`: the listening address, or for a wildcard
/// listener this host's first non-loopback IPv4 address (127.0.0.1 if it has none).
func advertisedHost(_ host: String) -> String {
    guard host == "0.0.0.0" || host == "::" else { return host.contains(":") ? "[\(host)]" : host }
    var list: UnsafeMutablePointer<ifaddrs>?
    guard getifaddrs(&list) == 0, let first = list else { return "127.0.0.1" }
    defer { freeifaddrs(list) }
    var p: UnsafeMutablePointer<ifaddrs>? = first
    while let a = p {
        if let sa = a.pointee.ifa_addr, sa.pointee.sa_family == UInt16(AF_INET), a.pointee.ifa_flags & UInt32(IFF_LOOPBACK) == 0 {
            var addr = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            inet_ntop(AF_INET, &addr, &text, socklen_t(text.count))
            return String(decoding: text.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        p = a.pointee.ifa_next
    }
    return "127.0.0.1"
}
