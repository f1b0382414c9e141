import Bencode
import Hashing
import NIOCore
import PeerWire
import Storage

/// One connection's protocol state on the seeding side. Pure: it takes messages and the
/// time, and returns actions for the channel handler to carry out (send, read a block from
/// disk, close). Timers, sockets and disk live outside, so it is tested with a manual clock.
public struct PeerSession {
    public enum Action: Equatable {
        case send(PeerMessage)
        /// Read these blocks (contiguous, in order) from disk, then call `blockRead` (or
        /// `blockFailed`) for each.
        case read([BlockRequest])
        case close(CloseReason)
    }

    /// The extension ids we ask peers to use when sending to us.
    public static let utMetadataID: UInt8 = 2
    public static let uploadOnlyID: UInt8 = 3
    /// Requests queued per peer (advertised as `reqq`). libtorrent keeps up to this many in
    /// flight and sizes its pipeline by it; only `readAhead` of them are being read at once.
    public static let maxRequestQueue = 2000
    /// Blocks being read per peer: enough to keep a fast link busy, few enough to bound memory.
    public static let readAhead = 128
    /// Contiguous requests read together (one disk read, one thread hop).
    public static let readBatch = 64
    public static let idleTimeout: Double = 180
    public static let keepAliveInterval: Double = 90

    let torrent: SeedTorrent
    /// Hash messages are allowed only on v2 connections (BEP 52; libtorrent disconnects otherwise).
    public let isV2: Bool
    public let fast: Bool
    public let extensions: Bool
    let peerAddress: [UInt8]?
    /// Our listening port, told in the extension handshake (`p`).
    let listenPort: UInt16?

    public private(set) var peerInterested = false
    public private(set) var choking = true
    private var peerMetadataID: UInt8?
    private var peerIsSeed = false
    private var pending: [BlockRequest] = []
    private var inFlight: Set<BlockRequest> = []
    private var cancelled: Set<BlockRequest> = []
    private var writable = true
    private var lastReceived: Double
    private var lastSent: Double
    public private(set) var uploaded: Int64 = 0
    /// Set by the first `close` action: from then on nothing is processed (bytes that came in
    /// the same read as a fatal message must not change the state, e.g. make it interested).
    public private(set) var closed = false

    init(torrent: SeedTorrent, isV2: Bool, peer: Reserved, peerAddress: [UInt8]?, listenPort: UInt16? = nil, now: Double) {
        self.torrent = torrent
        self.isV2 = isV2
        self.fast = peer.fast
        self.extensions = peer.extensionProtocol
        self.peerAddress = peerAddress
        self.listenPort = listenPort
        self.lastReceived = now
        self.lastSent = now
    }

    /// What we say first, right after the handshake.
    mutating func start(now: Double) -> [Action] {
        var out: [Action] = []
        let pieces = torrent.pieces
        if fast && pieces.isFull {
            out.append(.send(.haveAll))
        } else if fast && pieces.isEmpty {
            out.append(.send(.haveNone))
        } else {
            out.append(.send(.bitfield(ByteBuffer(bytes: pieces.bytes))))
        }
        if extensions {
            var h = ExtensionHandshake()
            h.messages = ["ut_metadata": Self.utMetadataID, "upload_only": Self.uploadOnlyID]
            // BEP 27: no peer exchange for a private torrent.
            if !torrent.metainfo.isPrivate { h.messages[PEXMessage.extensionName] = PEXState.ourID }
            h.listenPort = listenPort
            h.metadataSize = torrent.metadataSize
            h.client = "webseed \(webseedClientVersion)"
            h.requestQueue = Self.maxRequestQueue
            h.yourIP = peerAddress
            h.uploadOnly = pieces.isFull
            out.append(.send(.extended(id: 0, payload: ByteBuffer(bytes: h.encode()))))
        }
        lastSent = now
        return out
    }

    mutating func receive(_ message: PeerMessage, now: Double) -> [Action] {
        guard !closed else { return [] }
        lastReceived = now
        return noteClose(handle(message))
    }

    /// Records a close decision, so that it is the session's last.
    private mutating func noteClose(_ actions: [Action]) -> [Action] {
        if actions.contains(where: { if case .close = $0 { true } else { false } }) { closed = true }
        return actions
    }

    private mutating func handle(_ message: PeerMessage) -> [Action] {
        switch message {
        case .keepAlive, .port, .suggestPiece, .allowedFast, .have, .unknown, .hashes, .hashReject:
            if !fast, case .suggestPiece = message { return [.close(.fastMessageWithoutFast)] }
            if !fast, case .allowedFast = message { return [.close(.fastMessageWithoutFast)] }
            return []
        case .haveAll, .haveNone:
            guard fast else { return [.close(.fastMessageWithoutFast)] }
            if case .haveAll = message { peerIsSeed = true }
            return seedsMeet()
        case .bitfield(let b):
            if let set = PieceSet(bitfield: Array(buffer: b), count: torrent.metainfo.pieceCount), set.isFull { peerIsSeed = true }
            return seedsMeet()
        case .interested:
            peerInterested = true
            return []
        case .notInterested:
            peerInterested = false
            return []
        case .choke, .unchoke:
            return []  // we never download, so their choking us changes nothing
        case .request(let r):
            return request(r)
        case .cancel(let r):
            return cancel(r)
        case .piece:
            return [.close(.unsolicitedPiece)]
        case .rejectRequest:
            guard fast else { return [.close(.fastMessageWithoutFast)] }
            return []
        case .extended(let id, let payload):
            return extended(id: id, payload: payload)
        case .hashRequest(let h):
            return [.send(hashAnswer(h))]
        }
    }

    /// Two seeds have nothing to give each other (a magnet downloader still fetching the
    /// metadata sends no bitfield yet, so this does not cut it off).
    private func seedsMeet() -> [Action] {
        peerIsSeed && torrent.pieces.isFull ? [.close(.bothSeeds)] : []
    }

    private mutating func request(_ r: BlockRequest) -> [Action] {
        let piece = Int(r.piece)
        let valid = piece < torrent.metainfo.pieceCount && r.length > 0 && r.length <= 16_384
            && Int(r.begin) + Int(r.length) <= torrent.pieceSize(piece)
        guard valid else {
            return fast ? [.send(.rejectRequest(r))] : [.close(.invalidRequest(r))]
        }
        // Choked, over the queue limit, a duplicate, or a piece we do not serve: refuse.
        if choking || pending.count + inFlight.count >= Self.maxRequestQueue || !torrent.pieces.contains(piece)
            || pending.contains(r) || inFlight.contains(r) {
            return fast ? [.send(.rejectRequest(r))] : []
        }
        pending.append(r)
        return []  // read when the whole batch of incoming messages is in: see `startReads`
    }

    /// Starts disk reads for what has queued up; the handler calls it once per socket read,
    /// so the requests that arrived together are read together.
    mutating func startReads() -> [Action] { closed ? [] : pump() }

    private mutating func cancel(_ r: BlockRequest) -> [Action] {
        if let i = pending.firstIndex(of: r) {
            pending.remove(at: i)
            return fast ? [.send(.rejectRequest(r))] : []  // BEP 6: one answer per request, even after cancel
        }
        if inFlight.contains(r), !cancelled.contains(r) {
            cancelled.insert(r)
            return fast ? [.send(.rejectRequest(r))] : []
        }
        return []
    }

    /// Starts disk reads for queued requests while the socket can take more, batching runs
    /// of contiguous requests (clients ask for a piece's blocks in order).
    private mutating func pump() -> [Action] {
        var out: [Action] = []
        while writable && !choking && inFlight.count < Self.readAhead && !pending.isEmpty {
            var batch = [pending.removeFirst()]
            while batch.count < Self.readBatch, inFlight.count + batch.count < Self.readAhead, let next = pending.first,
                  let last = batch.last, next.piece == last.piece, next.begin == last.begin + last.length {
                batch.append(pending.removeFirst())
            }
            inFlight.formUnion(batch)
            out.append(.read(batch))
        }
        return out
    }

    /// A block came back from disk (already verified).
    mutating func blockRead(_ r: BlockRequest, data: ByteBuffer, now: Double) -> [Action] {
        guard !closed, inFlight.remove(r) != nil else { return [] }
        if cancelled.remove(r) != nil { return pump() }
        uploaded += Int64(data.readableBytes)
        lastSent = now
        return [.send(.piece(piece: r.piece, begin: r.begin, block: data))] + pump()
    }

    /// A block could not be served (its file changed on disk, or disappeared).
    mutating func blockFailed(_ r: BlockRequest) -> [Action] {
        guard !closed, inFlight.remove(r) != nil else { return [] }
        if cancelled.remove(r) != nil { return pump() }
        return (fast ? [.send(.rejectRequest(r))] : []) + pump()
    }

    mutating func setWritable(_ w: Bool) -> [Action] {
        writable = w
        return closed ? [] : pump()
    }

    /// The choker's decision.
    mutating func setChoking(_ choke: Bool) -> [Action] {
        guard !closed, choke != choking else { return [] }
        choking = choke
        if !choke { return [.send(.unchoke)] + pump() }
        var out: [Action] = [.send(.choke)]
        // BEP 6: after a choke, every outstanding request is rejected explicitly.
        if fast {
            out += pending.map { .send(.rejectRequest($0)) }
            for r in inFlight where !cancelled.contains(r) {
                cancelled.insert(r)
                out.append(.send(.rejectRequest(r)))
            }
        } else {
            cancelled.formUnion(inFlight)
        }
        pending.removeAll()
        return out
    }

    mutating func tick(now: Double) -> [Action] {
        guard !closed else { return [] }
        if now - lastReceived > Self.idleTimeout { return noteClose([.close(.idle(seconds: Int(Self.idleTimeout)))]) }
        if now - lastSent > Self.keepAliveInterval {
            lastSent = now
            return [.send(.keepAlive)]
        }
        return []
    }

    // MARK: extensions

    private mutating func extended(id: UInt8, payload: ByteBuffer) -> [Action] {
        guard extensions else { return [.close(.extensionWithoutProtocol)] }
        let bytes = Array(buffer: payload)
        if id == 0 {
            guard let h = try? ExtensionHandshake(decoding: bytes) else { return [.close(.malformedExtensionHandshake)] }
            if let m = h.messages["ut_metadata"] { peerMetadataID = m == 0 ? nil : m }
            return []
        }
        if id == Self.utMetadataID {
            let message: MetadataMessage?
            do { message = try MetadataMessage.decode(bytes) } catch { return [.close(.malformedMetadataMessage)] }
            guard case .request(let piece)? = message, let peerID = peerMetadataID else { return [] }
            let answer: MetadataMessage
            if let data = torrent.metadataPiece(piece) {
                answer = .data(piece: piece, totalSize: torrent.metadataSize, payload: data)
            } else {
                answer = .reject(piece: piece)
            }
            return [.send(.extended(id: peerID, payload: ByteBuffer(bytes: answer.encode())))]
        }
        return []  // upload_only and anything else: informational
    }

    private func hashAnswer(_ h: HashRequest) -> PeerMessage {
        guard isV2, let tree = torrent.trees[h.piecesRoot],
              let hashes = tree.hashes(baseLayer: Int(h.baseLayer), index: Int(h.index), length: Int(h.length), proofLayers: Int(h.proofLayers))
        else { return .hashReject(h) }
        var out = ByteBuffer()
        out.reserveCapacity(hashes.count * 32)
        for d in hashes { _ = withUnsafeBytes(of: d) { out.writeBytes($0) } }
        return .hashes(h, hashes: out)
    }
}

public let webseedClientVersion = "0.1.0"
