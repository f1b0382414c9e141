import Locking
import Bencode
import DHT
import DHTProtocol
import Hashing
import Metainfo
import Names
import ServiceLifecycle
import Signing
import Storage
import Swarm

/// The first version of the site `SitePreparation` made, handed to the publisher.
final class FirstVersion: Sendable {
    let value = Locked<PreparedDirectory?>(nil)
}

/// `seed DIR --key FILE`: puts a BEP 44 mutable item, signed by the key, whose value names
/// the seeded torrent (`SiteRecord`: BEP 46's `ih` and the v2 hash), and keeps it alive.
/// With `--watch`, each settled change of DIR is packaged, seeded and published as the
/// next `seq`; the version it replaces keeps seeding for `grace` seconds, then is removed.
///
/// `seq` is kept in `<state>/names/<name>/published`, written before each put, so it only
/// grows across restarts; the first put waits for the DHT's current item and goes above it
/// (see `PublishState`), so a lost state directory never moves the name backwards.
/// Decisions are `PublishState`'s and `Debouncer`'s; this service only carries them out.
struct NamePublisher: EngineService {
    let context: EngineContext
    let settings: EngineConfiguration.Seed
    let key: Ed25519PrivateKey
    let node: DHTService
    let first: FirstVersion
    /// Packages new versions as the first one was.
    let preparation: SitePreparation
    var log: EventSink { context.log }

    /// Where a name's state lives: `<state>/names/<name>`.
    static func directory(state: String, key: Ed25519PublicKey) -> String { state + "/names/" + SiteName.name(for: key) }

    /// Clears the snapshots a previous run left and returns where the first one goes.
    static func startSnapshots(state: String, key: Ed25519PublicKey) throws -> String {
        let dir = directory(state: state, key: key) + "/snapshots"
        Snapshot.remove(dir)
        try makeDirectories(dir)
        return dir + "/1"
    }

    /// A stored state past this is not one webseed wrote.
    private static let maxStateSize = 4096

    func run(started: @escaping @Sendable () -> Void) async throws {
        guard let prepared = first.value.withLock({ $0 }), let source = settings.sources.first else { return }
        let dir = Self.directory(state: context.configuration.stateDirectory, key: key.publicKey)
        try makeDirectories(dir)
        let stored = readStored(dir + "/published")
        started()
        await cancelWhenGracefulShutdown {
            await publish(source: source, first: prepared, stored: stored, statePath: dir + "/published")
        }
    }

    private struct Version {
        let prepared: PreparedDirectory
        let record: SiteRecord
    }

    private func publish(source: String, first: PreparedDirectory, stored: PublishedVersion?, statePath: String) async {
        let clock = ContinuousClock()
        let origin = clock.now
        func now() -> Double { (clock.now - origin) / .seconds(1) }

        guard let firstRecord = SiteRecord(metainfo: first.torrent.metainfo) else { return }
        var state = PublishState(stored: stored, refresh: settings.republish)
        var current = Version(prepared: first, record: firstRecord)
        var retiring: [(version: Version, until: Double)] = []
        var debouncer = Debouncer(settled: first.fingerprint, now: now())
        var snapshots = 1
        var watchError: String?
        var nextLook = 0.0
        var unreachedSince: Double?
        var warnedUnreached = false

        // The DHT's current item first, once the node knows someone (it may have just started).
        let joinBy = now() + 10
        while await node.nodeCount() == 0, now() < joinBy, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(200))
        }
        let found = await node.item(key: key.publicKey)
        guard assign(current, found: found.map { Self.version($0) }, state: &state, statePath: statePath) else { return }

        while !Task.isCancelled {
            let t = now()
            if t >= state.nextPut(now: t) {
                if await put(&state, current, statePath: statePath, now: t) {
                    unreachedSince = nil
                } else if t - (unreachedSince ?? t) >= 30, !warnedUnreached {
                    warnedUnreached = true
                    log.warning("name \(SiteName.name(for: key.publicKey)): no DHT node has taken the item for 30 s; still trying every few seconds")
                } else if unreachedSince == nil {
                    unreachedSince = t
                }
            }
            if settings.watch, now() >= nextLook {
                let began = now()
                let seen = await look(source)
                // Walking a huge directory takes at most a tenth of the time.
                nextLook = now() + 9 * (now() - began)
                switch seen {
                case .success(let listing):
                    watchError = nil
                    if debouncer.observe(listing, now: now()) != nil {
                        snapshots += 1
                        if let next = await package(source, snapshot: snapshotPath(snapshots), debouncer: &debouncer, now: now()) {
                            // Only mtimes changed (a touch, a save without edits): the same torrent, nothing to publish.
                            guard next.record != current.record else {
                                if let s = next.prepared.snapshot { Snapshot.remove(s) }
                                continue
                            }
                            start(next, replacing: current)
                            retiring.append((current, now() + settings.grace))
                            current = next
                            guard assign(current, found: nil, state: &state, statePath: statePath) else { return }
                            continue
                        }
                    }
                case .failure(let e):
                    if watchError != e.description { log.warning("watching \(source): \(e.description)") }
                    watchError = e.description
                }
            }
            let due = now()
            for r in retiring where r.until <= due { await retire(r.version) }
            retiring.removeAll { $0.until <= due }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Gives `version` its seq (above whatever is known, unless that already names it) and
    /// stores it before anything is put. False when seq cannot grow any more.
    private func assign(_ version: Version, found: PublishedVersion?, state: inout PublishState, statePath: String) -> Bool {
        guard let v = state.version(of: version.record.value.encoded(), found: found) else {
            log.warning("name \(SiteName.name(for: key.publicKey)): seq cannot grow past \(Int64.max); nothing more is published")
            return false
        }
        do { try AtomicFile.write(Array(v.stateText.utf8), to: statePath, overwrite: true) } catch {
            log.warning("cannot keep seq \(v.seq) in \(statePath): \(error.description); a restart relies on the DHT for it")
        }
        return true
    }

    /// Puts the current version; false when it reached no node.
    @discardableResult
    private func put(_ state: inout PublishState, _ version: Version, statePath: String, now: Double) async -> Bool {
        guard var v = state.current else { return true }
        for _ in 0..<3 {
            let item: MutableItem
            do { item = try MutableItem(signing: version.record.value, seq: v.seq, with: key) } catch {
                log.warning("cannot sign the item of \(SiteName.name(for: key.publicKey)): \(error)")
                return true
            }
            // This engine's gateway serves the version at once, whether or not a node has taken it yet.
            context.servePublished?(v.seq, version.record.siteID, ResolvedItemFile.encode(item))
            let result = await node.put(.mutable(item))
            switch state.putDone(sentTo: result.sentTo, found: result.found.flatMap { Self.version($0) }, now: now) {
            case .published(let sentTo, let first):
                log.namePublished(key.publicKey, record: version.record, seq: v.seq, sentTo: sentTo, refresh: !first)
                return true
            case .notReached:
                // A node that knows nobody yet; tried again shortly.
                log.nameNotReached(key.publicKey, seq: v.seq)
                return false
            case .outbid(let by):
                guard assign(version, found: nil, state: &state, statePath: statePath), let next = state.current else { return true }
                if by.value != next.value { log.nameOutbid(key.publicKey, found: by.seq, seq: next.seq) }
                v = next
            }
        }
        return true
    }

    /// The directory's listing as it is now (on a Dispatch thread: it walks the disk).
    private func look(_ source: String) async -> Result<ListingFingerprint, ValidationFailure> {
        let request = TorrentCreator.Request(directory: source)
        return await blocking {
            do throws(StorageError) { return .success(ListingFingerprint(try TorrentCreator.list(request).files)) } catch {
                return .failure(ValidationFailure(error.description))
            }
        }
    }

    private func package(_ source: String, snapshot: String?, debouncer: inout Debouncer<ListingFingerprint>, now: Double) async -> Version? {
        let preparation = self.preparation, state = context.configuration.stateDirectory
        do {
            let prepared = try await blocking { try preparation.packageDirectory(source, state: state, snapshot: snapshot) }
            debouncer.packaged(prepared.fingerprint, now: now)
            guard let record = SiteRecord(metainfo: prepared.torrent.metainfo) else { return nil }
            return Version(prepared: prepared, record: record)
        } catch {
            if let snapshot { Snapshot.remove(snapshot) }
            debouncer.failed(now: now)
            log.warning("\(source) changed but cannot be packaged yet: \(error); trying again shortly")
            return nil
        }
    }

    /// Seeds a new version and announces it, as the first one was. This engine's gateway
    /// serves it at once in place of the old one (whose peers finish during the grace period).
    private func start(_ version: Version, replacing old: Version) {
        let t = version.prepared.torrent
        context.seeder?.add(t)
        context.replaceSeededSite?(old.prepared.torrent, t)
        context.sites.append((torrent: t, path: version.prepared.torrentPath))
        context.metrics.track(t)
        context.announce(t, port: context.reach.announcedPort)
        let magnet = MagnetLink(metainfo: t.metainfo, peers: [context.reach.peerAddress])
        log.site(t.metainfo, magnet: magnet.uri, torrent: version.prepared.torrentPath,
                 gatewayPort: context.replaceSeededSite == nil ? nil : context.gatewayPort,
                 gatewayHost: context.configuration.gateway?.listen.host ?? "127.0.0.1")
    }

    /// A replaced version whose grace period is over: no longer seeded, its snapshot removed.
    private func retire(_ version: Version) async {
        let t = version.prepared.torrent
        await context.seeder?.remove(t)
        // Unless the same torrent is seeded again (an edit undone), its hashes are no longer announced.
        if !context.sites.contains(where: { $0.torrent !== t && $0.torrent.shortHashes == t.shortHashes }) {
            context.withdraw(t)
        }
        context.sites.removeAll { $0.torrent === t }
        if let s = version.prepared.snapshot { Snapshot.remove(s) }
        log.siteRetired(t.metainfo)
    }

    private func snapshotPath(_ n: Int) -> String {
        Self.directory(state: context.configuration.stateDirectory, key: key.publicKey) + "/snapshots/\(n)"
    }

    /// The stored version, or nil (none yet, or not one webseed wrote: said once, and the
    /// DHT's item then decides the next seq).
    private func readStored(_ path: String) -> PublishedVersion? {
        do {
            guard let bytes = try StateFile.read(path, maxSize: Self.maxStateSize) else { return nil }
            if let v = PublishedVersion(stateText: String(decoding: bytes, as: UTF8.self)) { return v }
            log.warning("\(path) is not a name state webseed wrote; the next seq is chosen above the DHT's")
        } catch {
            log.warning("\(error.description); the next seq is chosen above the DHT's")
        }
        return nil
    }

    private static func version(_ item: DHTItem) -> PublishedVersion? {
        guard case .mutable(let m) = item else { return nil }
        return version(m)
    }

    private static func version(_ m: MutableItem) -> PublishedVersion { PublishedVersion(seq: m.seq, value: m.encodedValue) }
}
