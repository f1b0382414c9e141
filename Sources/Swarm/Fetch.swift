import Locking
import Hashing
import Metainfo
import NIOCore
import NIOPosix
import PeerWire
import Storage

/// A peer connection as a fetch sees it (implemented by `PeerHandler`).
protocol FetchLink: AnyObject {
    var address: String { get }
    /// Bans apply to the host, whatever port it comes from.
    var host: String { get }
    var isV2: Bool { get }
    var fast: Bool { get }
    /// A BEP 19 web seed (`WebSeedLink`), not a peer connection.
    var isWebSeed: Bool { get }
    func send(_ messages: [PeerMessage])
    func disconnect(reason: FetchCloseReason)
    /// The torrent is known now: serve it on this connection too.
    func attach(_ torrent: SeedTorrent)
}

/// What a fetch reports as it runs.
public enum FetchEvent: Sendable {
    case metadata(Metainfo, directory: String, from: String?)
    case resumed(directory: String, pieces: Int, of: Int, fromRecord: Int, rechecked: Int)
    case peerBanned(address: String, reason: FetchBanReason)
    /// A piece did not match its hash; reported for every mismatch, also when it came
    /// from several peers and so bans no one.
    case hashFailed(piece: Int)
    /// A web seed is no longer used (it answered wrong, stalled, or sent a piece that did not
    /// verify); `retryIn`: seconds until it is tried again, when the reason may pass.
    case webSeedDropped(url: String, reason: String, retryIn: Double?)
    /// The download record could not be used; what is on disk was hashed instead.
    case recordUnusable(StorageError)
    case complete(Metainfo, directory: String, seconds: Double)
    case failed(FetchError)
    /// Peers a connected peer named by PEX (BEP 11), new to that connection; `refused`:
    /// entries it sent that were not taken (over the caps, outside its scope).
    case peersLearned(from: String, peers: [(host: String, port: Int)], refused: Int)
}

public struct FetchOptions: Sendable {
    /// The site's root on disk; nil: a folder named after the torrent in `defaultParent`.
    public var directory: String?
    public var defaultParent: String
    /// Resume records and fetched torrents live here.
    public var stateDirectory: String
    /// Give up after this long with nothing received while not complete.
    public var timeout: Double = 60
    public var recheck = false
    /// Peers given by the user, for error messages.
    public var peerNames: [String] = []
    /// Peers are also looked for on the DHT (for error messages).
    public var usesDHT = false
    /// Peers are also asked of trackers (for error messages).
    public var usesTrackers = false
    /// BEP 19 web seeds are used (for error messages).
    public var usesWebSeeds = false
    /// A web seed dropped for a reason that may pass (a failed connection, a stall, a 5xx)
    /// is tried again after this many seconds, doubling while it keeps failing (0: never).
    public var webSeedRetry: Double = 30
    /// Complete files elsewhere on this host, by v2 pieces root (absolute paths): a file of
    /// the torrent with one of these roots that is not in the directory yet is linked (or
    /// copied) from there and verified before anything is downloaded (see `FetchDisk.reuse`).
    public var reuse: [SHA256Digest: String] = [:]
    /// Checked once the metadata is known (after its info hash matched): a reason refuses
    /// the torrent and fails the download before anything is checked or downloaded.
    public var metadataCheck: (@Sendable (Metainfo) -> String?)?
    public init(directory: String?, defaultParent: String, stateDirectory: String) {
        self.directory = directory
        self.defaultParent = defaultParent
        self.stateDirectory = stateDirectory
    }
}

public struct FetchProgress: Sendable {
    public var verified: Int64 = 0
    public var total: Int64 = 0
    public var pieces = 0
    public var pieceCount = 0
    public var peers = 0
    public var downloaded: Int64 = 0
    public var complete = false
    public var hasMetadata = false
}

/// Downloads one torrent (see `FetchMachine` for every decision): feeds the machine what
/// happens, with the time, and carries out what it answers on the seeder's event loop:
/// messages to peers, work on the disk threads, the promises of `want` and `ready`.
final class Fetch {
    let options: FetchOptions
    let loop: any EventLoop
    let threadPool: NIOThreadPool
    let onEvent: @Sendable (FetchEvent) -> Void
    private(set) var machine: FetchMachine
    private var links: [ObjectIdentifier: any FetchLink] = [:]
    /// The torrent being written, from the look at the disk on; served once `ready`.
    var store: SeedTorrent?
    private(set) var torrent: SeedTorrent?
    private var readyWaiters: [EventLoopPromise<SeedTorrent>] = []
    private var waiters: [Int: EventLoopPromise<Void>] = [:]
    private var nextWaiter = 0
    /// Web seeds waiting to be tried again, and each one's drops without a block in between.
    var webSeedRetries: [String: Scheduled<Void>] = [:]
    var webSeedDrops: [String: Int] = [:]
    var webSeedsStopped = false
    /// `progress` as of the last second (or the last change of phase), readable from any
    /// thread, also after the loop has stopped.
    let published = PublishedProgress()

    init(magnet: MagnetLink?, metainfo: Metainfo?, options: FetchOptions, loop: any EventLoop, threadPool: NIOThreadPool,
         now: Double, onEvent: @escaping @Sendable (FetchEvent) -> Void) {
        machine = FetchMachine(v1Hash: metainfo?.v1InfoHash ?? magnet?.v1InfoHash, v2Hash: metainfo?.v2InfoHash ?? magnet?.v2InfoHash,
                               metainfo: metainfo, options: options, now: now)
        self.options = options
        self.loop = loop
        self.threadPool = threadPool
        self.onEvent = onEvent
    }

    /// Starts work that needs no peer: with a .torrent (or one fetched earlier and kept in
    /// the state directory), the metadata is known at once.
    func start(now: Double) { run(.start, now: now) }

    var v1Hash: SHA1Digest? { machine.v1Hash }
    var v2Hash: SHA256Digest? { machine.v2Hash }

    /// The 20-byte hashes peers may use for this torrent.
    var shortHashes: [[UInt8]] {
        var out: [[UInt8]] = []
        if let v2 = v2Hash { out.append(Array(v2.bytes.prefix(20))) }
        if let v1 = v1Hash { out.append(v1.bytes) }
        return out
    }

    var v2Short: [UInt8]? { v2Hash.map { Array($0.bytes.prefix(20)) } }

    /// What to say in our handshake when connecting out: a hybrid (both hashes known) by
    /// its v1 hash with the upgrade bit, so v1-only clients understand it and v2 clients
    /// answer with the v2 hash (BEP 52).
    var outgoingHash: (hash: [UInt8], upgrade: Bool) {
        if let v1 = v1Hash, v2Hash != nil { return (v1.bytes, true) }
        if let v2 = v2Short { return (v2, false) }
        return (v1Hash!.bytes, false)
    }

    var recordPath: String { options.stateDirectory + "/" + stateKey + ".fetch" }
    var torrentPath: String { options.stateDirectory + "/" + stateKey + ".torrent" }
    var stateKey: String { v2Hash?.hex ?? v1Hash!.hex }

    var metainfo: Metainfo? { machine.metainfo }
    var progress: FetchProgress { machine.progress }

    /// The phase, as connections need to know it.
    enum Phase { case metadata, layers, checking, downloading, finishing, complete, failed }
    var phase: Phase {
        switch machine.phase {
        case .metadata, .busy: .metadata
        case .layers: .layers
        case .checking: .checking
        case .downloading: .downloading
        case .finishing: .finishing
        case .complete: .complete
        case .failed: .failed
        }
    }

    /// Why `host` is banned from this download, if it is.
    func banReason(_ host: String) -> FetchBanReason? { machine.banned[host] }
    func isBanned(_ host: String) -> Bool { machine.isBanned(host) }

    // MARK: events

    func joined(_ link: any FetchLink) {
        let key = ObjectIdentifier(link)
        links[key] = link
        run(.peerJoined(key, FetchPeerInfo(address: link.address, host: link.host, isV2: link.isV2, fast: link.fast, isWebSeed: link.isWebSeed)), now: clock())
    }

    var linkList: [any FetchLink] { Array(links.values) }

    func left(_ link: any FetchLink) {
        let key = ObjectIdentifier(link)
        guard links.removeValue(forKey: key) != nil else { return }
        run(.peerLeft(key), now: clock())
    }

    /// Messages from a peer (those the download side cares about).
    func receive(_ message: PeerMessage, from link: any FetchLink, now: Double) {
        run(.message(message, from: ObjectIdentifier(link)), now: now)
    }

    func tick(now: Double) { run(.tick, now: now) }

    /// Peers learned through PEX on one of this download's connections: reported, and
    /// dialled by whoever listens (the engine's dialer).
    func learned(_ peers: [PEXEntry], refused: Int, from address: String) {
        onEvent(.peersLearned(from: address, peers: peers.map { (host: $0.peer.host, port: Int($0.peer.port)) }, refused: refused))
    }

    // MARK: gateway

    /// Completes once the torrent is known and its data checked (it can then be read).
    func ready() -> EventLoopFuture<SeedTorrent> {
        if let torrent { return loop.makeSucceededFuture(torrent) }
        if machine.isFailed { return loop.makeFailedFuture(FetchError.invalidMetadata("the download failed")) }
        let p = loop.makePromise(of: SeedTorrent.self)
        readyWaiters.append(p)
        return p.futureResult
    }

    /// Completes once every piece under `range` of file `file` is verified, asking for
    /// those pieces before anything else.
    func want(file: Int, range: Range<Int64>, deadline: Double) -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        let id = nextWaiter
        nextWaiter += 1
        waiters[id] = promise
        run(.want(file: file, range: range, deadline: deadline, waiter: id), now: clock())
        return promise.futureResult
    }

    /// On shutdown: every request still waiting (a gateway request whose deadline passed
    /// leaves its waiter here until its pieces arrive) is failed, so nothing holds it.
    func failWaiters() {
        stopWebSeeds()
        perform(.fail(.shuttingDown))
    }

    /// On shutdown: the last record, written synchronously (the loop is about to stop).
    func flush() -> EventLoopFuture<Void> {
        guard let pieces = machine.recordToFlush, let store else { return loop.makeSucceededVoidFuture() }
        let path = recordPath
        return threadPool.runIfActive(eventLoop: loop) {
            _ = Result { () throws(FetchError) in
                try FetchDisk.saveRecord(metainfo: store.metainfo, reader: store.reader, directory: store.directory, pieces: pieces, path: path)
            }
        }.recover { _ in }
    }

    // MARK: carrying out

    /// Actions run after the machine has returned, so one may feed it again (a closed
    /// connection leaves at once; a disk answer comes later).
    func run(_ event: FetchMachine.Event, now: Double) {
        for action in machine.handle(event, now: now) { perform(action) }
    }

    private func perform(_ action: FetchMachine.Action) {
        switch action {
        case .send(let messages, let key): links[key]?.send(messages)
        case .disconnect(let key, let reason): links[key]?.disconnect(reason: reason)
        case .attach(let key): if let torrent { links[key]?.attach(torrent) }
        case .report(let event): onEvent(event)
        case .publish: published.set(machine.progress)
        case .ready:
            guard let store else { return }
            torrent = store
            published.set(store)
            for w in readyWaiters { w.succeed(store) }
            readyWaiters.removeAll()
        case .resolve(let ids):
            for id in ids { waiters.removeValue(forKey: id)?.succeed() }
        case .reject(let id, let e):
            waiters.removeValue(forKey: id)?.fail(e)
        case .fail(let e):
            for w in waiters.values { w.fail(e) }
            for w in readyWaiters { w.fail(e) }
            waiters.removeAll()
            readyWaiters.removeAll()
        case .update(let updates): apply(updates)
        case .loadSavedTorrent: run(.savedTorrent(savedTorrent()), now: clock())
        case .saveTorrent(let m, let layers): saveTorrent(m, layers: layers)
        case .check(let check, let directory, let recheck): startChecking(check, directory: directory, recheck: recheck)
        case .verifyAndWrite(let p, let data, let check): verifyAndWrite(p, data: data, check: check)
        case .saveRecord(let pieces): saveRecord(pieces)
        case .finish(let check, let leaves, let known): finish(check, leaves: leaves, known: known)
        }
    }

    private func apply(_ updates: [FetchMachine.TorrentUpdate]) {
        guard let store else { return }
        for u in updates {
            switch u {
            case .pieces(let set): for p in 0..<set.count where set.contains(p) { store.addPiece(p) }
            case .piece(let p): store.addPiece(p)
            case .generation(let f, let g): store.wrote(file: f, generation: g)
            case .leaves(let f, let first, let leaves): store.addLeaves(file: f, first: first, leaves)
            case .tree(let f, let tree): store.addTree(tree, file: f)
            }
        }
    }

    func clock() -> Double { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }
}

/// A fetch's progress, shared with other threads.
final class PublishedProgress: Sendable {
    let value = Locked(FetchProgress())
    let seed = Locked<SeedTorrent?>(nil)
    func set(_ p: FetchProgress) { value.withLock { $0 = p } }
    var current: FetchProgress { value.withLock { $0 } }
    func set(_ t: SeedTorrent) { seed.withLock { $0 = t } }
    var torrent: SeedTorrent? { seed.withLock { $0 } }
}
