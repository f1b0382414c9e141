import Locking
import FoundationEssentials
import Metainfo
import ServiceLifecycle
import Storage
import Swarm

/// The last service of `seed`: once everything else runs, says where each site is (the
/// magnet waits for the first port-mapping outcome, at most 10 s, so that it names the
/// address peers outside reach), connects out to --peer peers and announces the sites.
struct SeedSession: EngineService {
    let context: EngineContext
    var log: EventSink { context.log }

    func run(started: @escaping @Sendable () -> Void) async throws {
        await context.mapper?.firstOutcome(timeout: 10)
        // A signal during that wait: straight to shutdown, announcing nothing more.
        guard !Task.isShuttingDownGracefully else { return }
        let configuration = context.configuration
        for (t, path) in context.sites {
            let magnet = MagnetLink(metainfo: t.metainfo, peers: [context.reach.peerAddress])
            log.site(t.metainfo, magnet: magnet.uri, torrent: path, gatewayPort: context.gatewayPort,
                     gatewayHost: configuration.gateway?.listen.host ?? "127.0.0.1")
        }
        context.dialer?.offer(configuration.peers.map { PeerAddress(host: $0.host, port: $0.port) }, to: .everything)
        context.announceSites(port: context.reach.announcedPort)
        log.ready(offline: configuration.offline)
        started()
        var status: StatusLine?
        if let seeder = context.seeder, configuration.seed?.statusLine == true {
            status = StatusLine(seeder: seeder, torrents: context.sites.map(\.torrent), console: log.console, enabled: true)
            status?.start()
        }
        try? await gracefulShutdown()
        status?.stop()
    }
}

/// The last service of `gateway`: lists the sites given on the command line.
struct GatewaySession: EngineService {
    let context: EngineContext
    var log: EventSink { context.log }

    func run(started: @escaping @Sendable () -> Void) async throws {
        let port = context.gatewayPort ?? 0
        for (magnet, metainfo) in context.configuration.gateway?.sources ?? [] {
            guard let v2 = metainfo?.v2InfoHash ?? magnet?.v2InfoHash else { continue }
            log.gatewaySite(id: SiteID.encode(v2), name: metainfo?.name ?? magnet?.displayName, port: port,
                            host: context.configuration.gateway?.listen.host ?? "127.0.0.1")
        }
        log.ready(offline: context.configuration.offline)
        started()
        try? await gracefulShutdown()
    }
}

/// How a download ended, for the engine's last line.
final class FetchOutcome: Sendable {
    struct State {
        var failure: FetchError?
        /// Why a `get` on a name failed (one line).
        var message: String?
        var complete = false
        var downloaded: Int64 = 0
        var uploaded: Int64 = 0
    }
    let state = Locked(State())
}

/// The last service of `get`: downloads one torrent and ends the engine when it fails, or
/// when it completes with --exit-when-done (else it seeds on until a signal).
struct FetchSession: EngineService {
    let context: EngineContext
    var log: EventSink { context.log }
    let settings: EngineConfiguration.Fetch
    let outcome: FetchOutcome

    func run(started: @escaping @Sendable () -> Void) async throws {
        let configuration = context.configuration
        var peers = configuration.peers.map { PeerAddress(host: $0.host, port: $0.port) }
        for pe in settings.magnet?.peers ?? [] {
            if let (h, p) = try? parseHostPort(pe, option: "x.pe") { peers.append(PeerAddress(host: h, port: p)) }
        }
        var seen = Set<PeerAddress>()
        peers = peers.filter { seen.insert($0).inserted }
        let state = configuration.stateDirectory + "/downloads"
        var options = FetchOptions(directory: settings.output.map(resolvedPath), defaultParent: resolvedPath("."), stateDirectory: state)
        options.timeout = settings.timeout
        options.recheck = settings.recheck
        options.peerNames = peers.map { "\($0.host):\($0.port)" }
        options.usesDHT = !context.peerSources.isEmpty
        let (ended, end) = AsyncStream.makeStream(of: Void.self)
        let log = self.log, outcome = self.outcome, exitWhenDone = settings.exitWhenDone
        let handle = context.fetch(magnet: settings.magnet, metainfo: settings.metainfo, options: options, peers: peers) { event in
            log.fetchEvent(event)
            switch event {
            case .failed(let e):
                outcome.state.withLock { $0.failure = e }
                end.finish()
            case .complete:
                outcome.state.withLock { $0.complete = true }
                if exitWhenDone { end.finish() } else { log.seeding() }
            default:
                break
            }
        }
        guard let handle else { return }
        started()
        let progress = ProgressReporter(handle: handle, log: log, terminal: settings.progressLine)
        progress.start()
        // Ends on a graceful shutdown, or by itself (which shuts the engine down).
        await cancelWhenGracefulShutdown {
            for await _ in ended {}
        }
        progress.stop()
        let last = handle.progress
        let uploaded = handle.torrent?.uploaded ?? 0
        outcome.state.withLock {
            $0.downloaded = last.downloaded
            $0.uploaded = uploaded
        }
    }
}
