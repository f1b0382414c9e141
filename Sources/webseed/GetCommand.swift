import ArgumentParser
import Dispatch
import FoundationEssentials
import Metainfo
import NIOCore
import Storage
import Swarm
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

struct Get: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fetch a site from the swarm, verifying every piece, then keep seeding it.",
        discussion: """
        SOURCE is a magnet link (btmh and/or btih; its x.pe peers are used) or a .torrent file. \
        With a magnet, the torrent's metadata comes from peers and is checked against the info \
        hash; piece layers come from hash requests and are checked against each file's pieces \
        root. Every piece is verified before it is written, counted or offered to other peers; \
        a peer that sends bad data is disconnected and banned. Files are written in place under \
        DIR; an interrupted download resumes where it stopped (run the same command again).
        """
    )

    @Argument(help: "A magnet link or a .torrent file.")
    var source: String

    @Option(name: .short, help: "Where the site's files go (default: ./<torrent name>). It may hold an earlier download of the same torrent, nothing else.")
    var output: String?

    @Option(name: .customLong("peer"), help: "Connect to this peer (HOST:PORT); repeatable.")
    var peers: [String] = []

    @Option(help: "Address to listen on for peers, HOST:PORT (default 0.0.0.0:6881; the next ports are tried if it is taken; port 0 picks any).")
    var listen: String = "0.0.0.0:6881"

    @Option(name: .customLong("state-dir"), help: "Where resume records and fetched torrents live (default: ~/.local/share/webseed).")
    var stateDir: String?

    @Flag(help: offlineHelp)
    var offline = false

    @Flag(name: .customLong("exit-when-done"), help: "Exit as soon as every file is written and verified, instead of seeding on.")
    var exitWhenDone = false

    @Option(help: "Give up when nothing arrives for this many seconds while downloading (default 60).")
    var timeout: Double = 60

    @Flag(help: "Hash what is on disk again instead of trusting the resume record.")
    var recheck = false

    @OptionGroup var dht: DHTOptions

    @Flag(help: "Log events as JSON lines instead of text.")
    var json = false

    func run() throws {
        try reportingErrors {
            let (host, port) = try parseHostPort(listen, option: "--listen")
            var targets = try peers.map { try parseHostPort($0, option: "--peer") }
            guard timeout > 0, timeout <= 86_400 else { throw ValidationFailure("--timeout must be between 0 and 86400 seconds") }
            let (magnet, metainfo) = try parseSource(source)
            for pe in magnet?.peers ?? [] {
                if let t = try? parseHostPort(pe, option: "x.pe") { targets.append(t) }
            }
            var seen = Set<String>()
            targets = targets.filter { seen.insert("\($0.0):\($0.1)").inserted }
            let state = (stateDir ?? defaultStateDirectory()) + "/downloads"
            try makeDirectories(state)
            let log = FetchLog(json: json)

            let stop = StopSignal()

            var options = FetchOptions(directory: output.map(resolvedPath), defaultParent: resolvedPath("."), stateDirectory: state)
            options.timeout = timeout
            options.recheck = recheck
            options.peerNames = targets.map { "\($0.0):\($0.1)" }
            let outcome = Mutex<FetchError?>(nil)
            let done = Mutex(false)
            let exitWhenDone = self.exitWhenDone
            let seeder = Seeder { event in log.seederEvent(event) }
            let dhtService = try dht.start(on: seeder, offline: offline, state: stateDir ?? defaultStateDirectory(), report: { e in
                if let (o, text) = describeDHT(e, host: host, names: [:]) { log.emit(o, text: text) }
            })
            let address: SocketAddress
            do {
                address = try seeder.listen(host: host, port: port)
            } catch {
                seeder.shutdown()
                throw ValidationFailure("cannot listen on \(listen): \(error)")
            }
            log.listening(host: address.ipAddress ?? host, port: address.port ?? port)
            options.usesDHT = dhtService != nil
            let handle = seeder.fetch(magnet: magnet, metainfo: metainfo, options: options) { event in
                log.fetchEvent(event)
                switch event {
                case .failed(let e):
                    outcome.withLock { $0 = e }
                    stop.signal()
                case .complete:
                    done.withLock { $0 = true }
                    if exitWhenDone { stop.signal() } else { log.seeding() }
                default:
                    break
                }
            }
            for (h, p) in targets { seeder.connect(host: h, port: p) }

            let progress = ProgressReporter(handle: handle, log: log, terminal: !json && isatty(STDOUT_FILENO) == 1)
            progress.start()
            stop.wait()
            progress.stop()
            let last = handle.progress
            let uploaded = handle.torrent?.uploaded ?? 0
            seeder.shutdown()
            if let e = outcome.withLock({ $0 }) { throw ValidationFailure(e.description) }
            log.stopped(downloaded: last.downloaded, uploaded: uploaded, complete: done.withLock { $0 })
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

/// What `get` tells its user: text lines, or JSON lines with `--json`.
final class FetchLog: Sendable {
    let json: Bool
    private let lock = Mutex(())
    private let terminalLine = Mutex(false)

    init(json: Bool) { self.json = json }

    func emit(_ object: [String: JSON], text: String?) {
        lock.withLock { _ in
            if json {
                print(JSON.object(object).text)
            } else if let text {
                if terminalLine.withLock({ $0 }) { print("\r\u{1b}[K", terminator: "") }
                print(text)
            }
            fflush(nil)
        }
    }

    /// A line redrawn in place on a terminal.
    func redraw(_ text: String) {
        lock.withLock { _ in
            terminalLine.withLock { $0 = true }
            print("\r\u{1b}[K\(text)", terminator: "")
            fflush(nil)
        }
    }

    func listening(host: String, port: Int) {
        emit(["event": "listening", "host": .string(host), "port": JSON(port)], text: "listening on \(host):\(port)")
    }

    func fetchEvent(_ e: FetchEvent) {
        switch e {
        case .metadata(let m, let directory, let from):
            emit(["event": "metadata", "name": .string(m.name), "files": JSON(m.files.count), "bytes": .number(m.totalSize),
                  "v2_infohash": JSON(m.v2InfoHash?.hex), "v1_infohash": JSON(m.v1InfoHash?.hex), "from": JSON(from),
                  "directory": .string(directory)],
                 text: "\(m.name): \(m.files.count) files, \(formatBytes(m.totalSize))\(from.map { " (metadata from \($0))" } ?? "") → \(directory)")
        case .resumed(let directory, let pieces, let of, let fromRecord, let rechecked):
            emit(["event": "resumed", "directory": .string(directory), "pieces": JSON(pieces), "of": JSON(of), "from_record": JSON(fromRecord), "rechecked": JSON(rechecked)],
                 text: pieces > 0 ? "already on disk: \(pieces)/\(of) pieces (\(fromRecord) from the resume record, \(rechecked) hashed again)" : nil)
        case .peerBanned(let address, let reason):
            if json { emit(["event": "peer_banned", "address": .string(address), "reason": .string(reason)], text: nil) } else {
                printError("warning: banned \(address): \(reason)")
            }
        case .complete(let m, let directory, let seconds):
            emit(["event": "complete", "name": .string(m.name), "directory": .string(directory), "files": JSON(m.files.count),
                  "bytes": .number(m.totalSize), "seconds": .double(seconds)],
                 text: "complete: \(m.files.count) files, \(formatBytes(m.totalSize)) in \(oneDecimal(seconds)) s → \(directory)")
        case .failed:
            break  // reported once, as the command's error
        }
    }

    func seederEvent(_ e: SeederEvent) {
        guard json else { return }
        switch e {
        case .peerConnected(let address, _, let v2):
            emit(["event": "peer_connected", "address": .string(address), "v2": .bool(v2)], text: nil)
        case .peerClosed(let address, let reason):
            emit(["event": "peer_closed", "address": .string(address), "reason": .string(reason)], text: nil)
        case .fileChanged(_, let path):
            emit(["event": "file_changed", "path": .string(path)], text: nil)
        }
    }

    func progress(_ p: FetchProgress, rate: Double, terminal: Bool) {
        if json {
            emit(["event": "progress", "verified": .number(p.verified), "total": .number(p.total), "pieces": JSON(p.pieces),
                  "of": JSON(p.pieceCount), "peers": JSON(p.peers), "rate": .double(rate)], text: nil)
        } else if terminal {
            let eta = rate > 0 && p.total > p.verified ? " ETA \(Int((Double(p.total - p.verified) / rate).rounded(.up))) s" : ""
            let what = p.hasMetadata ? "\(formatBytes(p.verified)) / \(formatBytes(p.total))" : "fetching metadata"
            redraw("\(what)  \(formatBytes(Int64(rate)))/s  peers \(p.peers)\(eta)")
        }
    }

    func seeding() {
        emit(["event": "seeding"], text: "seeding (Ctrl-C to stop)")
    }

    func stopped(downloaded: Int64, uploaded: Int64, complete: Bool) {
        emit(["event": "stopped", "downloaded": .number(downloaded), "uploaded": .number(uploaded), "complete": .bool(complete)],
             text: "stopped; downloaded \(formatBytes(downloaded))\(complete ? "" : " (incomplete: run the same command again to resume)")")
    }
}

/// Prints progress once a second while the download runs.
final class ProgressReporter: @unchecked Sendable {
    private let handle: FetchHandle
    private let log: FetchLog
    private let terminal: Bool
    private var timer: (any DispatchSourceTimer)?
    private var last: (Int64, UInt64) = (0, DispatchTime.now().uptimeNanoseconds)

    init(handle: FetchHandle, log: FetchLog, terminal: Bool) {
        self.handle = handle
        self.log = log
        self.terminal = terminal
    }

    func start() {
        guard log.json || terminal else { return }
        let t = DispatchSource.makeTimerSource(queue: .global())
        t.schedule(deadline: .now() + .seconds(1), repeating: .seconds(1))
        t.setEventHandler { [weak self] in self?.report() }
        t.resume()
        timer = t
    }

    func stop() {
        timer?.cancel()
        if terminal { log.redraw("") }
    }

    private func report() {
        let p = handle.progress
        guard !p.complete else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        let rate = Double(p.downloaded - last.0) / max(1e-3, Double(now - last.1) / 1e9)
        last = (p.downloaded, now)
        log.progress(p, rate: rate, terminal: terminal)
    }
}
