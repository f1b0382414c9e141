import DHT
import Hashing
import Metainfo
import NIOCore
import NIOPosix
import Names
import ServiceLifecycle
import Signing
import Storage
import Swarm

/// The last service of `get` on a name: resolves the name through the DHT (`NameTracker`
/// decides what is used), downloads the version it names and keeps the output directory in
/// step with it; without --exit-when-done it looks again every --name-refresh seconds and
/// brings the directory to each newer version whose torrent matched its item.
///
/// Each version is downloaded into its own staging folder in the state directory
/// (`names/<name>/<v2 hash>/`), taking every file whose pieces root the version in place
/// already has from that version (linked, then verified: `FetchOptions.reuse`), so only
/// changed files come from peers. Once complete, `DirectorySync` moves the changed and new
/// files into the directory (a link then a rename per file, so the staging copy keeps
/// seeding) and deletes the removed ones; unchanged files are not touched.
struct NameFetchSession: EngineService {
    let context: EngineContext
    let settings: EngineConfiguration.Fetch
    let key: Ed25519PublicKey
    let salt: [UInt8]
    let outcome: FetchOutcome
    var log: EventSink { context.log }

    /// How the name is shown: the `k-…` label, or the magnet when a salt is used.
    var displayName: String { salt.isEmpty ? SiteName.name(for: key) : SiteName.magnet(for: key, salt: salt) }

    func run(started: @escaping @Sendable () -> Void) async throws {
        guard let dht = context.peerSources.lazy.compactMap({ ($0 as? DHTNodeService)?.node }).first else {
            outcome.state.withLock { $0.message = "a name is resolved through the DHT; run without --no-dht" }
            return
        }
        started()
        let session = self
        // Ends on a graceful shutdown, or by itself (done with --exit-when-done, or failed).
        let (downloaded, uploaded, complete, failure) = await cancelWhenGracefulShutdown {
            var follower = NameDownload(session: session, dht: dht)
            await follower.run()
            return (follower.downloaded, follower.uploaded, follower.placed != nil, follower.failure)
        }
        outcome.state.withLock {
            $0.downloaded = downloaded
            $0.uploaded = uploaded
            $0.complete = complete
            if let failure { $0.message = failure }
        }
    }
}

/// The state of one `get` on a name while it runs (one task owns it).
struct NameDownload {
    let session: NameFetchSession
    let dht: DHTService
    let name: String
    let directory: String
    /// `names/<label>[.<salt hex>]` in the state directory.
    let home: String
    var tracker: NameTracker
    /// The version in the directory: its v2 hash and listing.
    var placed: (seq: Int64, v2: SHA256Digest, listing: [String: DirectorySync.Content])?
    /// Complete files the next version may take (root → absolute path).
    var reuse: [SHA256Digest: String] = [:]
    var downloaded: Int64 = 0
    var handles: [FetchHandle] = []
    var failure: String?
    var lastRefusal: NameRefusal?

    var uploaded: Int64 { handles.reduce(0) { $0 + ($1.torrent?.uploaded ?? 0) } }
    var log: EventSink { session.log }
    var settings: EngineConfiguration.Fetch { session.settings }

    init(session: NameFetchSession, dht: DHTService) {
        self.session = session
        self.dht = dht
        name = session.displayName
        let label = SiteName.name(for: session.key) + (session.salt.isEmpty ? "" : "." + HexCoding.encode(session.salt))
        home = session.context.configuration.stateDirectory + "/names/" + label
        directory = resolvedPath(session.settings.output ?? label)
        tracker = NameTracker(key: session.key, salt: session.salt, refresh: session.settings.nameRefresh,
                              metadataTimeout: session.settings.timeout)
        placed = Self.loadPlaced(home: home, directory: directory, torrents: session.context.configuration.stateDirectory + "/downloads")
        if let placed {
            for (path, content) in placed.listing { if case .root(let r) = content { reuse[r] = directory + "/" + path } }
        }
    }

    static func clock() -> Double { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }

    mutating func run() async {
        let start = Self.clock()
        var lastRetry = start
        while !Task.isCancelled {
            let now = Self.clock()
            if tracker.lookupDue(now: now) {
                let item = await dht.item(key: session.key, salt: session.salt)
                switch tracker.found(item, now: Self.clock()) {
                case .keep: break
                case .refused(let r): refused(r)
                case .fetch(let version): await download(version)
                }
            } else if let c = tracker.current, placed?.seq != c.seq, Self.clock() - lastRetry >= min(settings.nameRefresh, settings.timeout) {
                // Its metadata matched but the download stopped (a stall): try again.
                lastRetry = Self.clock()
                await download(c)
            }
            if let r = tracker.tick(now: Self.clock()) { refused(r) }
            if failure != nil { return }
            if placed != nil, settings.exitWhenDone, placed?.seq == tracker.current?.seq { return }
            if placed == nil, Self.clock() - start >= settings.timeout {
                failure = "\(name): no version could be fetched within \(Int(settings.timeout)) s (\(lastRefusal?.description ?? "no DHT node answered"))"
                return
            }
            // Before a version is in place, look again each second; then every --name-refresh.
            let wait = placed == nil || tracker.pending != nil ? 1 : max(1, min(settings.nameRefresh, 5))
            do { try await Task.sleep(for: .seconds(wait)) } catch { return }
        }
    }

    private mutating func refused(_ r: NameRefusal) {
        // "Not found" before anything is placed is said once, not every second.
        if r == .notFound, lastRefusal == .notFound { return }
        lastRefusal = r
        log.nameRefused(name, r)
    }

    /// Downloads `version` into its staging folder and, once complete, brings the directory to it.
    private mutating func download(_ version: NameTracker.Version) async {
        let record = version.record
        let staging = home + "/" + record.v2.hex
        let context = session.context
        var options = FetchOptions(directory: staging, defaultParent: home, stateDirectory: context.configuration.stateDirectory + "/downloads")
        options.timeout = settings.timeout
        options.recheck = settings.recheck
        let given = context.configuration.peers.map { PeerAddress(host: $0.host, port: $0.port) }
        options.peerNames = given.map { "\($0.host):\($0.port)" }
        // The peers the previous version came from are asked first: its publisher most likely seeds this one too.
        let previous = handles.last.flatMap { h in context.dialer?.peers(offeredTo: h) } ?? []
        let peers = given + previous.filter { !given.contains($0) }
        options.usesDHT = true
        options.reuse = reuse
        let seq = version.seq
        options.metadataCheck = { m in record.matches(m) ? nil : NameRefusal.torrentMismatch(seq: seq).description }
        let (events, sink) = AsyncStream.makeStream(of: FetchEvent.self)
        guard let handle = context.fetch(magnet: MagnetLink(v2InfoHash: record.v2), metainfo: nil, options: options, peers: peers, onEvent: { e in
            sink.yield(e)
            switch e {
            case .complete, .failed: sink.finish()
            default: break
            }
        }) else { return }
        handles.append(handle)
        let progress = ProgressReporter(handle: handle, log: log, terminal: settings.progressLine)
        progress.start()
        defer { progress.stop() }
        var metainfo: Metainfo?
        for await e in events {
            switch e {
            case .metadata(let m, _, _):
                // A restarted fetch of a version already checked reports its metadata again.
                if tracker.current?.seq == seq, record.matches(m) {
                    metainfo = m
                    continue
                }
                switch tracker.metadata(m, seq: seq, now: Self.clock()) {
                case .success(let v):
                    metainfo = m
                    log.nameResolved(name, v)
                case .failure(let r):
                    refused(r)
                    return
                }
            case .complete(let m, _, _):
                downloaded += handle.progress.downloaded
                await place(m, seq: seq, staging: staging, handle: handle)
                return
            case .failed(let e):
                if metainfo == nil { return }  // no torrent yet: NameTracker.tick refuses it in time
                log.warning("\(name): seq \(seq): \(e.description); trying again")
                if settings.exitWhenDone, placed == nil { failure = e.description }
                return
            default:
                log.fetchEvent(e)
            }
        }
    }

    /// Brings the directory to the complete version in `staging`.
    private mutating func place(_ m: Metainfo, seq: Int64, staging: String, handle: FetchHandle) async {
        let new = DirectorySync.listing(m)
        let plan = DirectorySync.plan(old: placed?.listing ?? [:], new: new)
        let directory = self.directory
        let applied: DirectorySync.Applied
        do {
            applied = try await NIOThreadPool.singleton.runIfActive {
                try makeDirectories(directory)
                return try DirectorySync.apply(plan, new: new, staging: staging, directory: directory)
            }
        } catch {
            failure = "\(name): cannot bring \(directory) to seq \(seq): \(error)"
            return
        }
        let previous = placed
        guard let v2 = m.v2InfoHash else { return }
        placed = (seq, v2, new)
        Self.savePlaced(home: home, seq: seq, v2: v2, directory: directory)
        if let torrent = handle.torrent { reuse = ReusableFiles.byPiecesRoot(torrent) }
        // The staging copy of the version replaced is no longer needed (its files live on
        // in the directory and the new staging copy where unchanged).
        if let previous, previous.v2 != v2 { FilePlacement.removeTree(home + "/" + previous.v2.hex) }
        log.nameUpdated(name, seq: seq, siteID: SiteID.encode(v2), directory: directory, files: m.files.count,
                        changed: applied.replaced, removed: applied.removed, downloaded: handle.progress.downloaded)
    }

    /// The version `get` last put in `directory` (kept in `home/placed`), with its torrent.
    static func loadPlaced(home: String, directory: String, torrents: String) -> (seq: Int64, v2: SHA256Digest, listing: [String: DirectorySync.Content])? {
        guard let bytes = try? StateFile.read(home + "/placed", maxSize: 8192) else { return nil }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count >= 3, let seq = Int64(lines[0]), let v2 = SHA256Digest(hex: lines[1]), lines[2] == directory,
              let raw = try? StateFile.read(torrents + "/" + v2.hex + ".torrent", maxSize: 64 << 20),
              let m = try? Metainfo(bytes: raw), m.v2InfoHash == v2 else { return nil }
        return (seq, v2, DirectorySync.listing(m))
    }

    static func savePlaced(home: String, seq: Int64, v2: SHA256Digest, directory: String) {
        try? AtomicFile.write(Array("\(seq)\n\(v2.hex)\n\(directory)\n".utf8), to: home + "/placed", overwrite: true)
    }
}
