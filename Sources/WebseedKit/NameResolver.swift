import Locking
import DHTProtocol
import Gateway
import Metainfo
import Names
import NIOCore
import Signing

/// Follows the names a gateway serves: for each, a task that looks its item up in the DHT
/// (`NameTracker` decides what an item means), fetches the torrent a newer item names
/// through the gateway's own fetcher, and switches the name in `GatewayNames` only once
/// that torrent's metadata matched the item. A name is looked up every `refresh` seconds,
/// and sooner when a request missed (at most every `NameTracker.missInterval`); while no
/// version is served and requests wait, every `firstRetry` seconds (a node that just
/// started may not have joined the DHT yet). With no DHT reachable a lookup finds nothing,
/// and the version served stays. With a state directory, the item of each switch is kept
/// (`ResolvedItemFile`) and a restarted gateway starts from it, checked as any item is.
final class NameResolver: NameFollower {
    /// The DHT lookup: the highest valid item of a key and salt, or nil.
    typealias Lookup = @Sendable (Ed25519PublicKey, [UInt8]) async -> MutableItem?

    struct Settings: Sendable {
        /// Seconds between lookups of a served name (`--name-refresh`).
        var refresh: Double = 60
        /// How long a newer version's torrent may take to appear before it is refused; also
        /// how long a request waits for a name's first version (the gateway's `--timeout`).
        var metadataTimeout: Double = 30
        /// Seconds between lookups while nothing is served and a request waits.
        var firstRetry: Double = 1
        /// Peers (HOST:PORT) the site of a version came from: asked first for the next one.
        var peersOf: @Sendable (_ siteID: String) -> [String] = { _ in [] }
        /// Where the item of each switch is kept for the next start (nil: nowhere).
        var stateDirectory: String?
    }

    private let sites: GatewaySites
    private let lookup: Lookup
    private let settings: Settings
    private let onEvent: @Sendable (NameEvent) -> Void
    private let followers = Locked<[String: Follower]>([:])

    init(sites: GatewaySites, settings: Settings, lookup: @escaping Lookup, onEvent: @escaping @Sendable (NameEvent) -> Void) {
        self.sites = sites
        self.settings = settings
        self.lookup = lookup
        self.onEvent = onEvent
    }

    func follow(_ name: String, in names: GatewayNames) {
        guard let key = SiteName.publicKey(fromName: name) else { return }
        let follower = Follower(name: name, key: key, names: names, resolver: self)
        let isNew = followers.withLock { f in
            guard f[name] == nil else { return false }
            f[name] = follower
            return true
        }
        if isNew { follower.start() }
    }

    func miss(_ name: String) {
        followers.withLock { $0[name] }?.wake(demand: true)
    }

    func unfollow(_ name: String) {
        followers.withLock { $0.removeValue(forKey: name) }?.stop()
    }

    /// Stops every name's task.
    func stop() {
        for f in followers.withLock({ $0.values }) { f.stop() }
    }

    /// Monotonic seconds, the clock of every `NameTracker` here and of the fetch deadlines.
    static var now: Double { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }

    /// One name: its tracker lives in its task; requests only wake it.
    private final class Follower: Sendable {
        let name: String
        let key: Ed25519PublicKey
        let names: GatewayNames
        let resolver: NameResolver
        private let wakes: AsyncStream<Void>
        private let waker: AsyncStream<Void>.Continuation
        /// When a request last missed or waited (monotonic seconds), and whether a lookup
        /// was asked for since the last one.
        private let demand = Locked<(at: Double, missed: Bool)>((-.infinity, false))
        private let task = Locked<Task<Void, Never>?>(nil)

        init(name: String, key: Ed25519PublicKey, names: GatewayNames, resolver: NameResolver) {
            self.name = name
            self.key = key
            self.names = names
            self.resolver = resolver
            (wakes, waker) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        }

        func start() {
            // Starting to follow counts as a demand: the first lookups retry soon (the DHT
            // node may still be joining) rather than at the refresh interval.
            demand.withLock { $0.at = NameResolver.now }
            task.withLock { $0 = Task { await self.run() } }
        }

        func stop() {
            task.withLock { $0 }?.cancel()
            waker.finish()
        }

        func wake(demand wanted: Bool) {
            if wanted { demand.withLock { $0 = (NameResolver.now, true) } }
            waker.yield()
        }

        private func run() async {
            let settings = resolver.settings
            var tracker = NameTracker(key: key, refresh: settings.refresh, metadataTimeout: settings.metadataTimeout)
            var reported: NameRefusal?
            var iterator = wakes.makeAsyncIterator()
            // The version a previous run switched to, if any: fetched (from the state directory's
            // saved torrent, or from peers) and checked before any lookup, as a DHT answer would be.
            if let state = settings.stateDirectory, let stored = ResolvedItemFile.load(state: state, name: name, key: key),
               case .fetch(let version) = tracker.found(stored, now: NameResolver.now) {
                await fetch(version, &tracker, reported: &reported)
            }
            while !Task.isCancelled {
                let now = NameResolver.now
                let due = nextLookup(tracker, now: now)
                if due > now {
                    let timer = Task { [waker] in
                        guard (try? await Task.sleep(for: .seconds(due - now))) != nil else { return }
                        waker.yield()
                    }
                    let ended = await iterator.next() == nil  // nil: stopped
                    timer.cancel()
                    if ended { return }
                    continue
                }
                demand.withLock { $0.missed = false }
                await lookOnce(&tracker, reported: &reported)
            }
        }

        /// When the next lookup is due (monotonic seconds).
        private func nextLookup(_ tracker: NameTracker, now: Double) -> Double {
            guard let last = tracker.lastLookup else { return now }
            let settings = resolver.settings
            let (demandAt, missed) = demand.withLock { $0 }
            if tracker.current == nil {
                // Nothing served yet: often while a request waits for it, else at the refresh.
                return now - demandAt <= settings.metadataTimeout ? last + settings.firstRetry : last + settings.refresh
            }
            return missed ? last + min(settings.refresh, tracker.missInterval) : last + settings.refresh
        }

        private func lookOnce(_ tracker: inout NameTracker, reported: inout NameRefusal?) async {
            // A version whose torrent is overdue is refused before anything else is decided.
            if let why = tracker.tick(now: NameResolver.now) { report(why, &reported) }
            let item = await resolver.lookup(key, [])
            let decision = tracker.found(item, now: NameResolver.now)
            // The name resolved in the DHT (an item was found, used or not): the status page
            // says when; a DHT that cannot be reached shows as a resolve time growing old.
            if item != nil { names.resolved(name) }
            switch decision {
            case .keep:
                if let item, let current = tracker.current, item.seq == current.seq { reported = nil }
            case .refused(let why):
                report(why, &reported)
            case .fetch(let version):
                await fetch(version, &tracker, reported: &reported)
            }
        }

        /// Fetches the torrent `version` names (as a magnet with its v2 hash would) and
        /// switches to it once its metadata matched the item.
        private func fetch(_ version: NameTracker.Version, _ tracker: inout NameTracker, reported: inout NameRefusal?) async {
            guard let since = tracker.pending?.since else { return }
            let deadline = NIODeadline.uptimeNanoseconds(UInt64((since + tracker.metadataTimeout) * 1e9))
            let sites = resolver.sites
            do {
                let peers = tracker.current.map { resolver.settings.peersOf($0.record.siteID) } ?? []
                let id = try sites.add(magnet: MagnetLink(v2InfoHash: version.record.v2, peers: peers))
                let metainfo = try await sites.metainfo(of: id, deadline: deadline)
                let from = tracker.current?.seq
                switch tracker.metadata(metainfo, seq: version.seq, now: NameResolver.now) {
                case .success(let v):
                    names.serve(name, GatewayNames.Version(siteID: v.record.siteID, seq: v.seq, item: ResolvedItemFile.encode(v.item)))
                    if let state = resolver.settings.stateDirectory { ResolvedItemFile.save(v.item, state: state, name: name) }
                    reported = nil
                    resolver.onEvent(from.map { .switched(name: name, seq: v.seq, siteID: v.record.siteID, fromSeq: $0) }
                        ?? .resolved(name: name, seq: v.seq, siteID: v.record.siteID))
                case .failure(let why):
                    report(why, &reported)
                }
                return
            } catch SiteContentError.timedOut {
            } catch {
                // Not fetchable at all (too many sites, the fetch failed): refused once its time is up.
                let left = max(0, Double((deadline - .now()).nanoseconds) / 1e9)
                try? await Task.sleep(for: .seconds(left))
            }
            if let why = tracker.tick(now: NameResolver.now) { report(why, &reported) }
        }

        /// Tells the table and the log why an item was not used; the same reason twice in a
        /// row (a name not found at every retry) is said once.
        private func report(_ why: NameRefusal, _ reported: inout NameRefusal?) {
            names.refused(name, GatewayNames.Refusal(code: why.code, reason: why.description))
            guard why != reported else { return }
            reported = why
            resolver.onEvent(.refused(name: name, why))
        }
    }
}
