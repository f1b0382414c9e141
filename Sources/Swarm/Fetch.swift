import Bencode
import Hashing
import Merkle
import Metainfo
import NIOCore
import NIOPosix
import PeerWire
import Storage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A peer connection as a fetch sees it (implemented by `PeerHandler`; faked in tests).
protocol FetchLink: AnyObject {
    var address: String { get }
    /// Bans apply to the host, whatever port it comes from.
    var host: String { get }
    var isV2: Bool { get }
    var fast: Bool { get }
    func send(_ messages: [PeerMessage])
    func disconnect(reason: String)
    /// The torrent is known now: serve it on this connection too.
    func attach(_ torrent: SeedTorrent)
}

/// What a fetch reports as it runs.
public enum FetchEvent: Sendable {
    case metadata(Metainfo, directory: String, from: String?)
    case resumed(directory: String, pieces: Int, of: Int, fromRecord: Int, rechecked: Int)
    case peerBanned(address: String, reason: String)
    case complete(Metainfo, directory: String, seconds: Double)
    case failed(FetchError)
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

/// Downloads one torrent: metadata over ut_metadata (checked against the info hash),
/// piece layers over hash requests (checked against each file's pieces root), then
/// pieces, each verified before it is written, offered to peers or counted. Owned by the
/// seeder's event loop; disk work runs on its thread pool.
final class Fetch {
    let v1Hash: SHA1Digest?
    let v2Hash: SHA256Digest?
    let options: FetchOptions
    let loop: any EventLoop
    let threadPool: NIOThreadPool
    let onEvent: @Sendable (FetchEvent) -> Void
    let started: Double

    enum Phase { case metadata, layers, checking, downloading, finishing, complete, failed }
    var phase = Phase.metadata
    var metainfo: Metainfo?
    var check: PieceCheck?
    var torrent: SeedTorrent?
    var picker: PiecePicker?
    var directory = ""
    var peers: [ObjectIdentifier: Peer] = [:]
    private(set) var banned: [String: String] = [:]
    var lastReceived: Double
    var downloaded: Int64 = 0
    var verifiedBytes: Int64 = 0
    var recordDirty = false
    var savingRecord = false
    var lastRecordSave: Double = 0
    var waiters: [(pieces: Range<Int>, promise: EventLoopPromise<Void>)] = []
    var readyWaiters: [EventLoopPromise<SeedTorrent>] = []
    /// `progress` as of the last second (or the last change of phase), readable from any
    /// thread, also after the loop has stopped.
    let published = PublishedProgress()

    // metadata
    var meta: (from: ObjectIdentifier, size: Int, pieces: [[UInt8]?], since: Double)?
    var metaFailed: Set<ObjectIdentifier> = []
    // piece layers
    var hashWanted: [(request: HashRequest, file: Int)] = []
    var hashSent: [HashRequest: (file: Int, peer: ObjectIdentifier, at: Double)] = [:]
    // pieces being assembled
    var assembling: [Int: (buffer: ByteBuffer, from: Set<String>)] = [:]
    var fileLeaves: [Int: [SHA256Digest]] = [:]
    var leavesKnown: [Int: Int] = [:]
    var pendingDisk = 0
    var assemblingBytes = 0

    struct Peer {
        let link: any FetchLink
        var has: PiecePicker.PeerHas?
        /// Before the metadata, what the peer said it has (decoded once the piece count is known).
        var rawBitfield: [UInt8]?
        var rawHaves: [Int] = []
        var rawAll: Bool?
        var choking = true
        var interested = false
        var outstanding: [BlockRequest: Double] = [:]
        var refused: Set<BlockRequest> = []
        var cancelled: Set<BlockRequest> = []
        var depth = 64
        var window = 0
        var metadataID: UInt8?
        var metadataSize: Int?
        var requestLimit = 250
        var hashRequests = 0
        var received: Int64 = 0
    }

    static let maxMetadataSize = 16 << 20
    static let requestTimeout: Double = 30
    static let maxQueue = 1024
    /// Bytes waiting for the disk threads (verify and write) before no more are requested:
    /// a downloader that outruns its disk or CPU holds memory to this, not to the link's rate.
    static let maxPendingDisk = 32 << 20

    init(magnet: MagnetLink?, metainfo: Metainfo?, options: FetchOptions, loop: any EventLoop, threadPool: NIOThreadPool,
         now: Double, onEvent: @escaping @Sendable (FetchEvent) -> Void) {
        v1Hash = metainfo?.v1InfoHash ?? magnet?.v1InfoHash
        v2Hash = metainfo?.v2InfoHash ?? magnet?.v2InfoHash
        self.options = options
        self.loop = loop
        self.threadPool = threadPool
        self.onEvent = onEvent
        started = now
        lastReceived = now
        initialMetainfo = metainfo
    }

    var initialMetainfo: Metainfo?

    /// Starts work that needs no peer: with a .torrent (or one fetched earlier and kept in
    /// the state directory), the metadata is known at once.
    func start(now: Double) {
        if let m = initialMetainfo ?? savedTorrent() {
            initialMetainfo = nil
            haveMetadata(m, from: nil, now: now)
        }
    }

    /// A torrent this fetch saved earlier (a restarted magnet download needs no metadata).
    func savedTorrent() -> Metainfo? {
        let fd = open(torrentPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size > 0, st.st_size < 64 << 20 else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        guard bytes.withUnsafeMutableBytes({ read(fd, $0.baseAddress, $0.count) }) == bytes.count,
              let m = try? Metainfo(bytes: bytes), m.v2InfoHash == v2Hash || (v2Hash == nil && m.v1InfoHash == v1Hash) else { return nil }
        return m
    }

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

    var progress: FetchProgress {
        var p = FetchProgress()
        p.peers = peers.count
        p.downloaded = downloaded
        p.hasMetadata = metainfo != nil
        p.complete = phase == .complete
        if let m = metainfo, let picker {
            p.total = m.totalSize
            p.verified = min(verifiedBytes, m.totalSize)
            p.pieces = picker.have.cardinality
            p.pieceCount = picker.pieceCount
        } else if let m = metainfo {
            p.total = m.totalSize
            p.pieceCount = m.pieceCount
        }
        return p
    }

    // MARK: peers coming and going

    func isBanned(_ host: String) -> Bool { banned[host] != nil }

    func joined(_ link: any FetchLink) {
        peers[ObjectIdentifier(link)] = Peer(link: link)
        lastReceivedPeerTime = max(lastReceivedPeerTime, 0)
    }
    var lastReceivedPeerTime: Double = 0

    func left(_ link: any FetchLink) {
        let key = ObjectIdentifier(link)
        guard let peer = peers.removeValue(forKey: key) else { return }
        if let has = peer.has { picker?.peerLeft(key, had: has) }
        for r in peer.outstanding.keys { picker?.lost(r) }
        for (r, s) in hashSent where s.peer == key {
            hashSent[r] = nil
            hashWanted.append((r, s.file))
        }
        if meta?.from == key { meta = nil }
        if phase == .metadata { startMetadata() }
        refillAll()
    }

    // MARK: messages from a peer (those the download side cares about)

    func receive(_ message: PeerMessage, from link: any FetchLink, now: Double) {
        let key = ObjectIdentifier(link)
        guard peers[key] != nil else { return }
        switch message {
        case .bitfield(let b):
            let bytes = Array(buffer: b)
            if let m = metainfo {
                guard let set = PieceSet(bitfield: bytes, count: m.pieceCount) else { return link.disconnect(reason: "malformed bitfield") }
                setHas(key, .some(set))
            } else {
                peers[key]!.rawBitfield = bytes
            }
        case .haveAll:
            if metainfo != nil { setHas(key, .all) } else { peers[key]!.rawAll = true }
        case .haveNone:
            if let m = metainfo { setHas(key, .some(PieceSet(count: m.pieceCount))) } else { peers[key]!.rawAll = false }
        case .have(let i):
            guard let m = metainfo else { peers[key]!.rawHaves.append(Int(i)); return }
            guard Int(i) < m.pieceCount else { return link.disconnect(reason: "have for piece \(i), past the end") }
            addHave(key, Int(i))
        case .choke:
            peers[key]!.choking = true
            if !link.fast {  // without the fast extension, a choke drops every request
                for r in peers[key]!.outstanding.keys { picker?.lost(r) }
                peers[key]!.outstanding.removeAll()
            }
        case .unchoke:
            peers[key]!.choking = false
            refill(key, now: now)
        case .piece(let piece, let begin, let block):
            receivedBlock(key, BlockRequest(piece: piece, begin: begin, length: UInt32(block.readableBytes)), block, now: now)
        case .rejectRequest(let r):
            if peers[key]!.outstanding.removeValue(forKey: r) != nil {
                peers[key]!.refused.insert(r)
                picker?.lost(r)
                refill(key, now: now)
            } else {
                peers[key]!.cancelled.remove(r)
            }
        case .hashes(let request, let data):
            hashes(key, request, data, now: now)
        case .hashReject(let request):
            if let s = hashSent.removeValue(forKey: request), s.peer == key {
                peers[key]!.hashRequests -= 1
                hashWanted.append((request, s.file))
                peers[key]!.hashRequests = Int.max / 2  // this peer cannot help; ask others
                sendHashRequests(now: now)
            }
        case .extended(let id, let payload):
            extended(key, id: id, payload: payload, now: now)
        default:
            break
        }
    }

    func setHas(_ key: ObjectIdentifier, _ has: PiecePicker.PeerHas) {
        guard var peer = peers[key] else { return }
        if let old = peer.has { picker?.peerLeft(key, had: old) }
        peer.has = has
        peers[key] = peer
        picker?.peerJoined(has)
        updateInterest(key)
    }

    func addHave(_ key: ObjectIdentifier, _ p: Int) {
        guard let m = metainfo, var peer = peers[key] else { return }
        switch peer.has {
        case .all?: return
        case .some(var set)?:
            guard !set.contains(p) else { return }
            set.insert(p)
            peer.has = .some(set)
            peers[key] = peer
            picker?.peerHas(piece: p)
        case nil:
            var set = PieceSet(count: m.pieceCount)
            set.insert(p)
            peers[key] = peer
            setHas(key, .some(set))
            return
        }
        if picker.map({ !$0.have.contains(p) }) ?? false { updateInterest(key) }
    }

    /// Interested while the peer has a piece we lack.
    func updateInterest(_ key: ObjectIdentifier) {
        guard let peer = peers[key], let picker, let has = peer.has, phase == .downloading else { return }
        let wants: Bool
        switch has {
        case .all: wants = !picker.isComplete
        case .some(let set): wants = (0..<set.count).contains { set.contains($0) && !picker.have.contains($0) }
        }
        if wants != peer.interested {
            peers[key]!.interested = wants
            peer.link.send([wants ? .interested : .notInterested])
        }
        if wants { refill(key, now: nowSeconds()) }
    }

    // MARK: blocks

    func receivedBlock(_ key: ObjectIdentifier, _ r: BlockRequest, _ data: ByteBuffer, now: Double) {
        guard var peer = peers[key] else { return }
        guard peer.outstanding.removeValue(forKey: r) != nil else {
            if peer.cancelled.remove(r) != nil { return }  // asked elsewhere too (end-game)
            return peer.link.disconnect(reason: "sent a block we did not request (piece \(r.piece), offset \(r.begin), length \(r.length))")
        }
        peer.window += data.readableBytes
        peer.received += Int64(data.readableBytes)
        peers[key] = peer
        downloaded += Int64(data.readableBytes)
        lastReceived = now
        guard let check, let complete = picker?.received(r) else { return refill(key, now: now) }
        let p = Int(r.piece)
        // Taken out of the dictionary while written to, so the buffer is not copied.
        var entry = assembling.removeValue(forKey: p) ?? (ByteBuffer(), [])
        if entry.buffer.capacity == 0 {
            let length = check.span(ofPiece: p).length
            entry.buffer = ByteBufferAllocator().buffer(capacity: length)
            entry.buffer.writeRepeatingByte(0, count: length)
            assemblingBytes += length
        }
        entry.buffer.setBuffer(data, at: Int(r.begin))
        entry.from.insert(peer.link.host)
        assembling[p] = entry
        // End-game: anyone else asked for this block need not send it.
        for (other, var o) in peers where other != key && o.outstanding.removeValue(forKey: r) != nil {
            o.cancelled.insert(r)
            peers[other] = o
            o.link.send([.cancel(r)])
        }
        if complete { verify(p) }
        refill(key, now: now)
    }

    func verify(_ p: Int) {
        guard let check, let torrent, let (buffer, from) = assembling.removeValue(forKey: p) else { return }
        assemblingBytes -= buffer.readableBytes
        let reader = torrent.reader
        let size = buffer.readableBytes
        pendingDisk += size
        threadPool.runIfActive(eventLoop: loop) { FetchDisk.verifyAndWrite(check: check, reader: reader, piece: p, data: buffer) }
            .assumeIsolated().whenComplete { [self] result in
                let wasHeld = pendingDisk >= Self.maxPendingDisk
                pendingDisk -= size
                defer { if wasHeld && pendingDisk < Self.maxPendingDisk { refillAll() } }
                guard phase == .downloading || phase == .finishing else { return }
                switch result {
                case .success(.ok(let leaves, let generation)):
                    pieceVerified(p, leaves: leaves, generation: generation)
                case .success(.mismatch(let why)):
                    if from.count == 1, let host = from.first {
                        picker?.failed(p, singleSource: false)
                        ban(host, reason: why)
                    } else {
                        picker?.failed(p, singleSource: true)  // who lied is unknown: next time from one peer only
                    }
                    refillAll()
                case .success(.writeFailed(let e)):
                    fail(.storage(e))
                case .failure(let e):
                    fail(.storage(.writeFailed(check.metainfo.name, reason: "\(e)")))
                }
            }
    }

    func pieceVerified(_ p: Int, leaves: [SHA256Digest], generation: FileGeneration?) {
        guard let check, let torrent else { return }
        picker?.verified(p)
        torrent.addPiece(p)
        verifiedBytes += Int64(check.span(ofPiece: p).length)
        recordDirty = true
        if let f = check.file(ofPiece: p) {
            torrent.wrote(file: f, generation: generation)
            noteLeaves(file: f, piece: p, leaves)
        }
        for (_, peer) in peers { peer.link.send([.have(UInt32(p))]) }
        resolveWaiters()
        if picker?.isComplete == true { finish() }
    }

    func noteLeaves(file f: Int, piece p: Int, _ leaves: [SHA256Digest]) {
        guard let m = metainfo else { return }
        let file = m.files[f]
        let count = Int((file.length + Int64(blockSize) - 1) / Int64(blockSize))
        if fileLeaves[f] == nil { fileLeaves[f] = [SHA256Digest](repeating: .zero, count: count) }
        let first = Int((Int64(p) * Int64(m.pieceLength) - file.offset) / Int64(blockSize))
        for (i, l) in leaves.enumerated() where first + i < count { fileLeaves[f]![first + i] = l }
        torrent?.addLeaves(file: f, first: first, leaves)
        leavesKnown[f, default: 0] += leaves.count
    }

    /// Tops up a peer's requests to its queue depth.
    func refill(_ key: ObjectIdentifier, now: Double) {
        guard phase == .downloading, pendingDisk < Self.maxPendingDisk, var picker, let peer = peers[key], !peer.choking, peer.interested,
              let has = peer.has else { return }
        let limit = min(peer.depth, peer.requestLimit)
        let room = limit - peer.outstanding.count
        // Requests go out in batches (one write for many), topped up at a quarter gone.
        guard room > 0, room >= min(16, limit / 4) || peer.outstanding.isEmpty else { return }
        // Partial pieces are held in memory whole: beyond the budget, finish those first.
        let startNew = assemblingBytes + pendingDisk < Self.maxPendingDisk * 2
        let picks = picker.pick(for: key, has: has, count: room, now: now, startNew: startNew) { r in peer.outstanding[r] != nil || peer.refused.contains(r) }
        self.picker = picker
        guard !picks.isEmpty else { return }
        for r in picks { peers[key]!.outstanding[r] = now }
        peer.link.send(picks.map { .request($0) })
    }

    func refillAll() {
        let now = nowSeconds()
        for key in peers.keys { refill(key, now: now) }
    }

    func ban(_ host: String, reason: String) {
        guard banned[host] == nil else { return }
        banned[host] = reason
        onEvent(.peerBanned(address: host, reason: reason))
        for (_, peer) in peers where peer.link.host == host { peer.link.disconnect(reason: "banned: \(reason)") }
    }

    // MARK: gateway

    /// Completes once the torrent is known and its data checked (it can then be read).
    func ready() -> EventLoopFuture<SeedTorrent> {
        if let torrent { return loop.makeSucceededFuture(torrent) }
        if phase == .failed { return loop.makeFailedFuture(FetchError.invalidMetadata("the download failed")) }
        let p = loop.makePromise(of: SeedTorrent.self)
        readyWaiters.append(p)
        return p.futureResult
    }

    /// Completes once every piece under `range` of file `file` is verified, asking for
    /// those pieces before anything else.
    func want(file: Int, range: Range<Int64>, deadline: Double) -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        guard let m = metainfo, file < m.files.count else {
            promise.fail(FetchError.invalidMetadata("no such file"))
            return promise.futureResult
        }
        let f = m.files[file]
        let pl = Int64(m.pieceLength)
        guard f.length > 0, !range.isEmpty else { promise.succeed(); return promise.futureResult }
        let first = Int((f.offset + range.lowerBound) / pl)
        let last = Int((f.offset + min(range.upperBound, f.length) - 1) / pl)
        waiters.append((first..<(last + 1), promise))
        picker?.prioritize(first..<(last + 1), deadline: deadline)
        resolveWaiters()
        refillAll()
        return promise.futureResult
    }

    func resolveWaiters() {
        guard let picker else { return }
        waiters.removeAll { w in
            guard w.pieces.allSatisfy({ picker.have.contains($0) }) else { return false }
            w.promise.succeed()
            return true
        }
    }

    // MARK: time

    func tick(now: Double) {
        defer { published.set(progress) }
        for (key, var peer) in peers {
            // Per-peer queue depth follows its rate: about two seconds of data in flight.
            let rate = Double(peer.window)
            peer.window = 0
            peer.depth = max(64, min(Self.maxQueue, Int(rate * 2 / Double(blockSize))))
            var expired: [BlockRequest] = []
            for (r, at) in peer.outstanding where now - at > Self.requestTimeout { expired.append(r) }
            for r in expired {
                peer.outstanding[r] = nil
                peer.cancelled.insert(r)
                picker?.lost(r)
            }
            peers[key] = peer
            if !expired.isEmpty { peer.link.send(expired.map { .cancel($0) }) }
        }
        for (r, s) in hashSent where now - s.at > Self.requestTimeout {
            hashSent[r] = nil
            peers[s.peer]?.hashRequests -= 1
            hashWanted.append((r, s.file))
        }
        if let m = meta, now - m.since > Self.requestTimeout {
            metaFailed.insert(m.from)
            meta = nil
            startMetadata()
        }
        if phase == .layers { sendHashRequests(now: now) }
        refillAll()
        saveRecordIfDue(now: now)
        checkStalled(now: now)
    }

    func checkStalled(now: Double) {
        guard [.metadata, .layers, .downloading].contains(phase), now - lastReceived > options.timeout else { return }
        let seconds = Int(options.timeout.rounded())
        if peers.isEmpty {
            var who = options.peerNames.isEmpty ? "none known (give --peer HOST:PORT or a magnet with x.pe=)" : "could not reach \(options.peerNames.joined(separator: ", "))"
            if options.usesDHT { who = (options.peerNames.isEmpty ? "none found on the DHT" : who + ", and none found on the DHT") }
            fail(.noPeers("\(who) within \(seconds) s"))
        } else if phase == .metadata {
            fail(.noMetadata(seconds: seconds, peers: peers.count))
        } else {
            fail(.stalled(seconds: seconds, peers: peers.count))
        }
    }

    func saveRecordIfDue(now: Double) {
        guard recordDirty, !savingRecord, phase == .downloading, let torrent, now - lastRecordSave >= 1 else { return }
        recordDirty = false
        savingRecord = true
        lastRecordSave = now
        let (m, dir, path, pieces) = (torrent.metainfo, directory, recordPath, torrent.pieces)
        threadPool.runIfActive(eventLoop: loop) {
            Result { () throws(FetchError) in try FetchDisk.saveRecord(metainfo: m, reader: torrent.reader, directory: dir, pieces: pieces, path: path) }
        }.assumeIsolated().whenComplete { [self] result in
            savingRecord = false
            if case .success(.failure(let e)) = result { fail(e) }
        }
    }

    /// On shutdown: the last record, written synchronously (the loop is about to stop).
    func flush() -> EventLoopFuture<Void> {
        guard phase == .downloading, let torrent else { return loop.makeSucceededVoidFuture() }
        let (m, dir, path, pieces) = (torrent.metainfo, directory, recordPath, torrent.pieces)
        return threadPool.runIfActive(eventLoop: loop) {
            _ = Result { () throws(FetchError) in try FetchDisk.saveRecord(metainfo: m, reader: torrent.reader, directory: dir, pieces: pieces, path: path) }
        }.recover { _ in }
    }

    func nowSeconds() -> Double { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }
}

/// A fetch's progress, shared with other threads.
final class PublishedProgress: Sendable {
    let value = Mutex(FetchProgress())
    let seed = Mutex<SeedTorrent?>(nil)
    func set(_ p: FetchProgress) { value.withLock { $0 = p } }
    var current: FetchProgress { value.withLock { $0 } }
    func set(_ t: SeedTorrent) { seed.withLock { $0 = t } }
    var torrent: SeedTorrent? { seed.withLock { $0 } }
}
