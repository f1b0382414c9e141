import Hashing
import Merkle
import Metainfo
import NIOCore
import PeerWire
import Storage

/// A connected peer as the download sees it: facts from its connection.
struct FetchPeerInfo: Sendable {
    var address: String
    /// Bans apply to the host, whatever port it comes from.
    var host: String
    var isV2: Bool
    var fast: Bool
    /// A BEP 19 web seed: has every piece, takes deep queues, cannot send metadata.
    var isWebSeed = false
}

/// Every decision of a download, without I/O: events and `now` in, actions out. `Fetch`
/// feeds it and carries the actions out (sockets, disk threads, promises). The phases:
/// metadata → layers → checking → downloading → finishing → complete, or failed from any
/// but the last (state diagram in README.md). Each phase holds only the data valid in it.
/// Piece layers (BEP 52 hash requests, `layerQueue`) are fetched alongside: only those the
/// look at the disk needs hold it up, a gateway's file goes first, the rest follow while
/// pieces are downloaded (a piece is asked for once its file's layer is known).
struct FetchMachine {
    typealias PeerKey = PiecePicker.PeerKey

    enum Event {
        /// The first event. The machine answers `.loadSavedTorrent` unless it was given a torrent.
        case start
        /// What the state directory held for this torrent (already parsed), if anything.
        case savedTorrent(Metainfo?)
        case peerJoined(PeerKey, FetchPeerInfo)
        case peerLeft(PeerKey)
        case message(PeerMessage, from: PeerKey)
        /// The gateway needs `range` of `file` by `deadline`; `waiter` names its promise.
        case want(file: Int, range: Range<Int64>, deadline: Double, waiter: Int)
        /// The answer to `.check`: which pieces are already on disk.
        case checked(Result<FetchDisk.Start, FetchError>)
        /// The answer to `.verifyAndWrite`.
        case written(piece: Int, FetchDisk.Written)
        /// The answer to `.saveRecord`.
        case recordSaved(FetchError?)
        /// The answer to `.finish`.
        case finished(Result<FetchDisk.Finished, FetchError>)
        /// About once a second.
        case tick
    }

    enum Action {
        case send([PeerMessage], to: PeerKey)
        case disconnect(PeerKey, FetchCloseReason)
        /// Read the torrent saved in the state directory and answer `.savedTorrent`.
        case loadSavedTorrent
        /// Keep the torrent (info dict and fetched piece layers) in the state directory.
        case saveTorrent(Metainfo, layers: [SHA256Digest: [SHA256Digest]])
        /// Make the torrent's files in `directory` and find what they hold; answer `.checked`.
        case check(PieceCheck, directory: String, recheck: Bool)
        /// Record verified data in the torrent being served.
        case update([TorrentUpdate])
        /// The torrent can be read and served: `ready()` completes, peers get it (`.attach`).
        case ready
        /// Serve the torrent on this connection too.
        case attach(PeerKey)
        /// Verify the piece and write it if it holds; answer `.written`.
        case verifyAndWrite(piece: Int, data: ByteBuffer, check: PieceCheck)
        /// Flush the files, then write the resume record for `pieces`; answer `.recordSaved`.
        case saveRecord(PieceSet)
        /// Build every file's Merkle tree and write the final record; answer `.finished`.
        case finish(PieceCheck, leaves: [Int: [SHA256Digest]], known: [Int: Int])
        case report(FetchEvent)
        /// These `want` waiters have every piece they asked for.
        case resolve([Int])
        case reject(waiter: Int, FetchError)
        /// The download stopped for good: every waiter fails with this.
        case fail(FetchError)
        /// `progress` changed in a way others should see now.
        case publish
    }

    enum TorrentUpdate {
        case pieces(PieceSet)
        case piece(Int)
        case generation(file: Int, FileGeneration?)
        case leaves(file: Int, first: Int, [SHA256Digest])
        case tree(file: Int, MerkleTree)
    }

    enum Phase {
        case metadata(MetadataState)
        case layers(LayerState)
        case checking(Known)
        case downloading(DownloadState)
        /// Every piece verified; the files' trees are being built.
        case finishing(DownloadState)
        case complete(Known, verified: Int64)
        case failed(last: FetchProgress)
        /// Only while a handler holds the download state (so its buffers are not copied).
        case busy
    }

    /// What is fixed once the metadata is known.
    struct Known {
        var metainfo: Metainfo
        var check: PieceCheck
        var directory: String
    }

    struct MetadataState {
        /// A torrent given at the start, used by `.start`.
        var given: Metainfo?
        /// The peer asked for the whole info dict (one source, so a mismatch names it): its
        /// size, the pieces so far, how many are asked for, and when the last piece came (or
        /// the first request went).
        var asked: (from: PeerKey, size: Int, pieces: [[UInt8]?], requested: Int, since: Double)?
        var refusedBy: Set<PeerKey> = []
    }

    /// Waiting for the piece layers the look at the disk needs: files that may be taken from
    /// elsewhere on the host (`FetchOptions.reuse`), or that an earlier look found on disk
    /// without their layer.
    struct LayerState {
        var known: Known
        var blocking: Set<Int>
    }

    struct DownloadState {
        var known: Known
        var picker: PiecePicker
        /// Pieces being assembled in memory, and the hosts that sent their blocks.
        var assembling: [Int: (buffer: ByteBuffer, from: Set<String>)] = [:]
        var assemblingBytes = 0
        /// Pieces at the disk threads, and who sent them (a mismatch from one host bans it).
        var verifying: [Int: Set<String>] = [:]
        var pendingDisk = 0
        var verifiedBytes: Int64 = 0
        var fileLeaves: [Int: [SHA256Digest]] = [:]
        var leavesKnown: [Int: Int] = [:]
        var recordDirty = false
        var savingRecord = false
        var lastRecordSave: Double = 0
    }

    struct Peer {
        let info: FetchPeerInfo
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
        var received: Int64 = 0
        init(info: FetchPeerInfo) {
            self.info = info
            if info.isWebSeed { requestLimit = FetchMachine.maxQueue }
        }
    }

    static let maxMetadataSize = 16 << 20
    static let requestTimeout: Double = 30
    static let maxQueue = 1024
    /// Bytes waiting for the disk threads (verify and write) before no more are requested:
    /// a downloader that outruns its disk or CPU holds memory to this, not to the link's rate.
    static let maxPendingDisk = 32 << 20

    let v1Hash: SHA1Digest?
    let v2Hash: SHA256Digest?
    let options: FetchOptions
    let started: Double
    var phase: Phase
    var peers: [PeerKey: Peer] = [:]
    var banned: [String: FetchBanReason] = [:]
    var lastReceived: Double
    var downloaded: Int64 = 0
    /// Pending `want`s: the pieces each needs, and its deadline (applied again when the picker is made).
    var waiters: [(id: Int, pieces: Range<Int>, deadline: Double)] = []
    /// The piece layers still to fetch (empty until the metadata is known).
    var layerQueue = LayerQueue([])

    init(v1Hash: SHA1Digest?, v2Hash: SHA256Digest?, metainfo: Metainfo?, options: FetchOptions, now: Double) {
        self.v1Hash = v1Hash
        self.v2Hash = v2Hash
        self.options = options
        started = now
        lastReceived = now
        phase = .metadata(MetadataState(given: metainfo))
    }

    /// The one entry point: what happened, and what to do about it.
    mutating func handle(_ event: Event, now: Double) -> [Action] {
        var out: [Action] = []
        switch event {
        case .start: start(now: now, &out)
        case .savedTorrent(let m): savedTorrent(m, now: now, &out)
        case .peerJoined(let key, let info):
            peers[key] = Peer(info: info)
            sendHashRequests(now: now, &out)
        case .peerLeft(let key): peerLeft(key, now: now, &out)
        case .message(let m, let key): receive(m, from: key, now: now, &out)
        case .want(let file, let range, let deadline, let waiter): want(file: file, range: range, deadline: deadline, waiter: waiter, now: now, &out)
        case .checked(let result): checked(result, now: now, &out)
        case .written(let piece, let outcome): written(piece, outcome, now: now, &out)
        case .recordSaved(let error): recordSaved(error, &out)
        case .finished(let result): finished(result, now: now, &out)
        case .tick: tick(now: now, &out)
        }
        return out
    }

    // MARK: queries

    var metainfo: Metainfo? { known?.metainfo }

    var known: Known? {
        switch phase {
        case .layers(let s): s.known
        case .checking(let k), .complete(let k, _): k
        case .downloading(let d), .finishing(let d): d.known
        case .metadata, .failed, .busy: nil
        }
    }

    var isComplete: Bool { if case .complete = phase { true } else { false } }
    var isFailed: Bool { if case .failed = phase { true } else { false } }

    /// The pieces to record on shutdown (only while downloading).
    var recordToFlush: PieceSet? {
        if case .downloading(let d) = phase { d.picker.have } else { nil }
    }

    var progress: FetchProgress {
        var p = FetchProgress()
        p.peers = peers.count
        p.downloaded = downloaded
        switch phase {
        case .failed(let last):
            p = last
            p.peers = peers.count
        case .downloading(let d), .finishing(let d):
            p.hasMetadata = true
            p.total = d.known.metainfo.totalSize
            p.verified = min(d.verifiedBytes, p.total)
            p.pieces = d.picker.have.cardinality
            p.pieceCount = d.picker.pieceCount
        case .complete(let k, let verified):
            p.hasMetadata = true
            p.complete = true
            p.total = k.metainfo.totalSize
            p.verified = min(verified, p.total)
            p.pieces = k.metainfo.pieceCount
            p.pieceCount = k.metainfo.pieceCount
        case .layers, .checking:
            p.hasMetadata = true
            p.total = known!.metainfo.totalSize
            p.pieceCount = known!.metainfo.pieceCount
        case .metadata, .busy:
            break
        }
        return p
    }

    /// The download state, taken out of `phase` while a handler changes it: the phase
    /// would otherwise share the state's buffers and every change would copy them.
    /// Put it back with `phase = .downloading(d)` (or move on to another phase).
    mutating func takeDownload() -> DownloadState? {
        guard case .downloading(let d) = phase else { return nil }
        phase = .busy
        return d
    }

    // MARK: peers coming and going

    mutating func peerLeft(_ key: PeerKey, now: Double, _ out: inout [Action]) {
        guard let peer = peers.removeValue(forKey: key) else { return }
        switch phase {
        case .metadata(var s):
            if s.asked?.from == key { s.asked = nil }
            phase = .metadata(s)
            startMetadata(now: now, &out)
        case .layers, .checking:
            layerQueue.peerLeft(key)
            sendHashRequests(now: now, &out)
        case .downloading:
            layerQueue.peerLeft(key)
            sendHashRequests(now: now, &out)
            var d = takeDownload()!
            if let has = peer.has { d.picker.peerLeft(key, had: has) }
            for r in peer.outstanding.keys { d.picker.lost(r) }
            refillAll(&d, now: now, &out)
            phase = .downloading(d)
        default:
            break
        }
    }

    func isBanned(_ host: String) -> Bool { banned[host] != nil }

    mutating func ban(_ host: String, _ reason: FetchBanReason, _ out: inout [Action]) {
        guard banned[host] == nil else { return }
        banned[host] = reason
        out.append(.report(.peerBanned(address: host, reason: reason)))
        for (key, peer) in peers where peer.info.host == host { out.append(.disconnect(key, .banned(reason))) }
    }

    mutating func fail(_ e: FetchError, _ out: inout [Action]) {
        switch phase {
        case .failed, .complete: return
        default: break
        }
        phase = .failed(last: progress)
        waiters.removeAll()
        out.append(.publish)
        out.append(.fail(e))
        out.append(.report(.failed(e)))
    }
}
