import FoundationEssentials
import Hashing
import Metainfo
import Storage
import ServiceLifecycle
import Swarm

/// One packaged version of a site directory, verified and ready to seed.
struct PreparedDirectory: Sendable {
    let torrent: SeedTorrent
    let torrentPath: String
    /// The listing it was packaged from (what `--watch` compares the directory with).
    let fingerprint: ListingFingerprint
    /// The snapshot it is seeded from (nil: the directory itself).
    let snapshot: String?
}

/// The first service of `seed`: every site is verified (or packaged) before the peer
/// listener binds, so nothing unverified is ever served. A signal while it hashes still
/// shuts down cleanly (the services after it never start).
struct SitePreparation: EngineService {
    let context: EngineContext
    let settings: EngineConfiguration.Seed
    let state: String
    /// With --key: the one directory's first version is handed to the publisher here.
    var firstVersion: FirstVersion?
    var log: EventSink { context.log }

    func run(started: @escaping @Sendable () -> Void) async throws {
        let sites = try await blocking { [self] in
            for sub in ["resume", "sites"] { try requireDirectory(state + "/" + sub) }
            if let firstVersion, let key = settings.key, let source = settings.sources.first {
                // --watch seeds every version from its own snapshot, the first one too.
                let snapshot = settings.watch ? try NamePublisher.startSnapshots(state: state, key: key.publicKey) : nil
                let prepared = try packageDirectory(source, state: state, snapshot: snapshot)
                firstVersion.value.withLock { $0 = prepared }
                return [(prepared.torrent, prepared.torrentPath as String?)]
            }
            return try settings.sources.map { try prepare($0, state: state) }
        }
        context.sites = sites.map { (torrent: $0.0, path: $0.1) }
        for (torrent, _) in sites { context.metrics.track(torrent) }
        started()
        try? await gracefulShutdown()
    }

    /// Verifies one source and returns it ready to seed (with the torrent's path if known).
    private func prepare(_ source: String, state: String) throws -> (SeedTorrent, String?) {
        var isDir = false
        guard FileManager.default.fileExists(atPath: source, isDirectory: &isDir) else {
            throw ValidationFailure("\(source): no such file or directory")
        }
        if isDir {
            return try prepareDirectory(source, state: state)
        }
        let m = try readTorrent(source)
        guard let dataDir = settings.data else {
            throw ValidationFailure("\(source) is a torrent: say where its files are with --data DIR")
        }
        let root = resolvedPath(dataDir)
        let resume = state + "/resume/" + resumeName(m)
        let local = LocalDataVerifier.verify(m, directory: root, resumePath: resume, recheck: settings.recheck)
        report(local, m)
        return (SeedTorrent(metainfo: m, directory: root, data: local), resolvedPath(source))
    }

    /// A directory is packaged once; while its listing (paths, sizes, mtimes) is unchanged,
    /// the torrent kept in the state directory is reused and the resume record spares the hashing.
    private func prepareDirectory(_ source: String, state: String) throws -> (SeedTorrent, String?) {
        let prepared = try packageDirectory(source, state: state)
        return (prepared.torrent, prepared.torrentPath)
    }

    /// Packages (or reuses) `source` and verifies it, ready to seed. With `snapshot`, the
    /// version is seeded from hard links made there (see `Snapshot`), or from `source`
    /// itself, with a warning, where links cannot be made. Called again by `--watch` for
    /// each new version.
    func packageDirectory(_ source: String, state: String, snapshot: String? = nil) throws -> PreparedDirectory {
        var request = TorrentCreator.Request(directory: source)
        request.torrent.createdBy = settings.createdBy
        var listing = try TorrentCreator.list(request)
        for w in listing.warnings { log.warning(w) }
        let siteRoot = listing.root
        var seededFrom: String?
        if let snapshot {
            if let why = try Snapshot.make(listing.files, into: snapshot) {
                log.warning("\(why); this version is seeded from \(siteRoot) itself (a file changed there is withdrawn from it)")
            } else {
                request.directory = snapshot
                request.name = siteRoot.split(separator: "/").last.map(String.init) ?? "site"
                listing = try TorrentCreator.list(request)
                seededFrom = listing.root
            }
        }
        let fingerprintValue = ListingFingerprint(listing.files)
        var fingerprint = Array(siteRoot.utf8) + [0]
        for f in listing.files {
            fingerprint += Array(f.pathString.utf8) + [0] + Array("\(f.size) \(f.modified?.seconds ?? 0) \(f.modified?.nanoseconds ?? 0)".utf8) + [0]
        }
        let key = Digests.sha256(Array(siteRoot.utf8)).hex.prefix(16)
        let siteDir = state + "/sites/\(key)"
        let torrentPath = siteDir + "/site.torrent"
        let fingerprintPath = siteDir + "/fingerprint"
        let infoHashPath = siteDir + "/infohash"
        let digest = Digests.sha256(fingerprint).hex
        try makeDirectories(siteDir)
        if readState(fingerprintPath, maxSize: Self.maxRecordSize) == Array(digest.utf8),
           let bytes = readState(torrentPath, maxSize: BencodeLimitsForCLI.maxTorrentSize), let m = try? Metainfo(bytes: bytes),
           reusable(m, torrentPath: torrentPath, infoHashPath: infoHashPath, source: source) {
            let resume = state + "/resume/" + resumeName(m)
            let local = LocalDataVerifier.verify(m, directory: listing.root, resumePath: resume, recheck: settings.recheck)
            report(local, m)
            return PreparedDirectory(torrent: SeedTorrent(metainfo: m, directory: listing.root, data: local), torrentPath: torrentPath,
                                     fingerprint: fingerprintValue, snapshot: seededFrom)
        }
        request.output = torrentPath
        request.overwrite = true
        let outcome = try TorrentCreator.create(request, listing: listing)
        let local = LocalData(metainfo: outcome.metainfo, directory: listing.root, freshlyHashed: outcome.hashed, listing: listing.files)
        try? local.saveResume(metainfo: outcome.metainfo, directory: listing.root, path: state + "/resume/" + resumeName(outcome.metainfo))
        try AtomicFile.write(Array(resumeName(outcome.metainfo).dropLast(".resume".count).utf8), to: infoHashPath, overwrite: true)
        try AtomicFile.write(Array(digest.utf8), to: fingerprintPath, overwrite: true)
        log.packaged(outcome.metainfo, directory: siteRoot)
        return PreparedDirectory(torrent: SeedTorrent(metainfo: outcome.metainfo, directory: listing.root, data: local), torrentPath: torrentPath,
                                 fingerprint: fingerprintValue, snapshot: seededFrom)
    }

    /// The torrent kept in the state directory is reused only if it is the one packaged
    /// (its info hash is the one recorded beside the fingerprint); another torrent put in
    /// its place is never seeded: the directory is packaged again, with a warning.
    private func reusable(_ m: Metainfo, torrentPath: String, infoHashPath: String, source: String) -> Bool {
        let hash = String(resumeName(m).dropLast(".resume".count))
        let recorded = readState(infoHashPath, maxSize: Self.maxRecordSize).map { String(decoding: $0, as: UTF8.self) }
        if recorded == hash { return true }
        if let recorded {
            log.warning("\(torrentPath) is not the torrent packaged from \(source) (info hash \(hash), packaged \(recorded)); packaging it again")
        }
        return false
    }

    /// A hash in hex, with room to spare.
    private static let maxRecordSize = 256

    /// Reads a file the state directory keeps for a packaged site. Anyone who can write there
    /// may leave a FIFO (reading it would block forever), a directory or a huge file in its
    /// place: that is no record, so the site is packaged again, with a warning.
    private func readState(_ path: String, maxSize: Int) -> [UInt8]? {
        do { return try StateFile.read(path, maxSize: maxSize) } catch {
            log.warning("\(error.description); packaging the site again")
            return nil
        }
    }

    /// A directory of the state directory that is something else stops `seed` with one line.
    private func requireDirectory(_ path: String) throws {
        var isDir = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir else { return }
        throw ValidationFailure("\(path) is a file, not a directory")
    }

    private func report(_ local: LocalData, _ m: Metainfo) {
        // Nothing is lost but time, yet whatever sits in the record's place should be removed.
        if let problem = local.resumeProblem { log.warning("\(m.name): \(problem.description); every file was hashed again") }
        for p in local.problems { log.warning("\(m.name): \(p.description) — its pieces are not served") }
        log.verified(m, local: local)
    }

    private func resumeName(_ m: Metainfo) -> String { (m.v2InfoHash?.hex ?? m.v1InfoHash!.hex) + ".resume" }
}
