import Hashing
import Merkle
import Metainfo
import NIOCore
import PeerWire
import Storage

/// Getting the torrent itself: the info dict over BEP 9 `ut_metadata` (one peer at a time,
/// checked against the info hash), the piece layers over BEP 52 hash requests (each answer
/// proved up to its file's pieces root), then the look at the disk.
extension FetchMachine {
    mutating func start(now: Double, _ out: inout [Action]) {
        guard case .metadata(let s) = phase else { return }
        if let m = s.given { haveMetadata(m, from: nil, now: now, &out) } else { out.append(.loadSavedTorrent) }
    }

    /// A torrent this fetch saved earlier: a restarted magnet download needs no metadata.
    mutating func savedTorrent(_ m: Metainfo?, now: Double, _ out: inout [Action]) {
        guard case .metadata = phase, let m, m.v2InfoHash == v2Hash || (v2Hash == nil && m.v1InfoHash == v1Hash) else { return }
        haveMetadata(m, from: nil, now: now, &out)
    }

    // MARK: metadata (BEP 9)

    mutating func extended(_ key: PeerKey, id: UInt8, payload: ByteBuffer, now: Double, _ out: inout [Action]) {
        let bytes = Array(buffer: payload)
        if id == 0 {
            guard let h = try? ExtensionHandshake(decoding: bytes) else { return }
            if let m = h.messages["ut_metadata"] { peers[key]!.metadataID = m == 0 ? nil : m }
            if let s = h.metadataSize, s > 0, s <= Self.maxMetadataSize { peers[key]!.metadataSize = s }
            if let q = h.requestQueue, q > 0 { peers[key]!.requestLimit = min(q, Self.maxQueue) }
            startMetadata(now: now, &out)
            return
        }
        guard id == PeerSession.utMetadataID, case .metadata(var s) = phase, let message = try? MetadataMessage.decode(bytes) else { return }
        switch message {
        case .data(let piece, let total, let data):
            guard var asked = s.asked, asked.from == key, total == asked.size, piece >= 0, piece < asked.pieces.count, asked.pieces[piece] == nil else { return }
            let expected = piece == asked.pieces.count - 1 ? asked.size - piece * MetadataMessage.pieceSize : MetadataMessage.pieceSize
            guard data.count == expected else {
                s.asked = nil
                phase = .metadata(s)
                return ban(peers[key]!.info.host, .metadataPieceSize(piece: piece), &out)
            }
            asked.pieces[piece] = data
            asked.since = now  // the time-out runs from the last piece
            lastReceived = now
            guard asked.pieces.allSatisfy({ $0 != nil }) else {
                // One more asked for each that arrives, keeping `metadataWindow` in flight.
                if asked.requested < asked.pieces.count, let id = peers[key]?.metadataID {
                    out.append(.send([Self.metadataRequest(asked.requested, id: id)], to: key))
                    asked.requested += 1
                }
                s.asked = asked
                phase = .metadata(s)
                return
            }
            s.asked = nil
            phase = .metadata(s)
            metadataComplete(from: key, bytes: asked.pieces.flatMap { $0! }, now: now, &out)
        case .reject:
            guard s.asked?.from == key else { return }
            s.asked = nil
            s.refusedBy.insert(key)
            phase = .metadata(s)
            startMetadata(now: now, &out)
        case .request:
            break  // answered by the seeding side (rejected: we have nothing yet)
        }
    }

    /// Metadata pieces asked of the peer at once. libtorrent answers a request at once only
    /// while less than 160 KiB (10 pieces) wait in its send buffer, and the rest once a
    /// second: asking for a 2,000-file site's 480 KB at once took it 1.3 s more.
    static let metadataWindow = 8

    static func metadataRequest(_ piece: Int, id: UInt8) -> PeerMessage {
        .extended(id: id, payload: ByteBuffer(bytes: MetadataMessage.request(piece: piece).encode()))
    }

    /// Asks one peer that has the metadata for all of it (one source: a mismatch names it),
    /// `metadataWindow` pieces at a time.
    mutating func startMetadata(now: Double, _ out: inout [Action]) {
        guard case .metadata(var s) = phase, s.asked == nil else { return }
        guard let (key, peer) = peers.first(where: { $0.value.metadataID != nil && $0.value.metadataSize != nil && !s.refusedBy.contains($0.key) }),
              let id = peer.metadataID, let size = peer.metadataSize else { return }
        let count = (size + MetadataMessage.pieceSize - 1) / MetadataMessage.pieceSize
        let first = min(count, Self.metadataWindow)
        s.asked = (key, size, [[UInt8]?](repeating: nil, count: count), first, now)
        phase = .metadata(s)
        out.append(.send((0..<first).map { Self.metadataRequest($0, id: id) }, to: key))
    }

    mutating func metadataComplete(from key: PeerKey, bytes: [UInt8], now: Double, _ out: inout [Action]) {
        let matches = v2Hash.map { Digests.sha256(bytes) == $0 } ?? (v1Hash.map { Digests.sha1(bytes) == $0 } ?? false)
        guard matches else {
            if case .metadata(var s) = phase {
                s.refusedBy.insert(key)
                phase = .metadata(s)
            }
            ban(peers[key]?.info.host ?? "?", .metadataHash, &out)
            startMetadata(now: now, &out)
            return
        }
        let m: Metainfo
        do {
            m = try Metainfo(bytes: Array("d4:info".utf8) + bytes + Array("e".utf8))
        } catch {
            return fail(.invalidMetadata(error.description), &out)
        }
        if let v1 = v1Hash, m.v1InfoHash != v1 { return fail(.invalidMetadata("it is not the torrent the v1 info hash names"), &out) }
        haveMetadata(m, from: peers[key]?.info.address, now: now, &out)
    }

    /// The torrent is known: look at the disk (once the layers that needs are known), and
    /// fetch the other missing piece layers alongside.
    mutating func haveMetadata(_ m: Metainfo, from: String?, now: Double, _ out: inout [Action]) {
        guard case .metadata = phase else { return }
        let check = PieceCheck(metainfo: m)
        let known = Known(metainfo: m, check: check, directory: options.directory ?? (options.defaultParent + "/" + Self.safeName(m.name)))
        let missing = check.missingLayers
        layerQueue = LayerQueue(missing.flatMap { file in check.layerRequests(file: file).map { ($0, file) } })
        // A file that may be taken from elsewhere on the host is verified before anything is downloaded.
        let blocking = missing.filter { m.files[$0].piecesRoot.map { options.reuse[$0] != nil } ?? false }
        layerQueue.prioritize(blocking)
        phase = .layers(LayerState(known: known, blocking: Set(blocking)))
        out.append(.report(.metadata(m, directory: known.directory, from: from)))
        if let why = options.metadataCheck?(m) { return fail(.invalidMetadata(why), &out) }
        // Decode what peers said before the piece count was known.
        for (key, peer) in peers {
            if let all = peer.rawAll { setHas(key, all ? .all : .some(PieceSet(count: m.pieceCount)), now: now, &out) }
            if let bits = peer.rawBitfield {
                guard let set = PieceSet(bitfield: bits, count: m.pieceCount) else { out.append(.disconnect(key, .malformedBitfield)); continue }
                setHas(key, .some(set), now: now, &out)
            }
            for h in peer.rawHaves where h < m.pieceCount { addHave(key, h, now: now, &out) }
        }
        lastReceived = now
        sendHashRequests(now: now, &out)
        if blocking.isEmpty { startChecking(known, &out) }
    }

    static func safeName(_ name: String) -> String {
        let cleaned = String(name.map { $0 == "/" ? "_" : $0 })
        return cleaned.isEmpty || cleaned == "." || cleaned == ".." ? "download" : cleaned
    }

    // MARK: piece layers (BEP 52 hash requests)

    /// Hands waiting hash requests to the v2 peers that have room for them.
    mutating func sendHashRequests(now: Double, _ out: inout [Action]) {
        switch phase {
        case .layers, .checking, .downloading: break
        default: return
        }
        guard !layerQueue.wanted.isEmpty else { return }
        let v2 = peers.filter { $0.value.info.isV2 && !isBanned($0.value.info.host) }.map(\.key)
        for (key, requests) in layerQueue.assign(to: v2, now: now) {
            out.append(.send(requests.map { .hashRequest($0) }, to: key))
        }
    }

    /// Changes the phase's `PieceCheck`; nil when no phase holds one that still needs layers.
    mutating func updateCheck<R>(_ body: (inout PieceCheck) -> R) -> R? {
        switch phase {
        case .layers(var s):
            defer { phase = .layers(s) }
            return body(&s.known.check)
        case .checking(var k):
            defer { phase = .checking(k) }
            return body(&k.check)
        case .downloading:
            var d = takeDownload()!
            defer { phase = .downloading(d) }
            return body(&d.known.check)
        default:
            return nil
        }
    }

    mutating func hashes(_ key: PeerKey, _ request: HashRequest, _ data: ByteBuffer, now: Double, _ out: inout [Action]) {
        guard let file = layerQueue.answered(request, by: key) else { return }
        var digests: [SHA256Digest] = []
        var data = data
        while data.readableBytes >= 32, let d = data.readBytes(length: 32) { digests.append(SHA256Digest(bytes: d)!) }
        guard let (accepted, completed) = updateCheck({ check -> (Bool, Bool) in
            let lacked = check.lacksLayer(file: file)
            let ok = check.accept(hashes: digests, for: request, file: file)
            return (ok, lacked && !check.lacksLayer(file: file))
        }) else { return }
        guard accepted else {
            layerQueue.retry(request, file: file, refusedBy: nil)
            ban(peers[key]!.info.host, .layerHashes(path: known!.metainfo.files[file].pathString), &out)
            sendHashRequests(now: now, &out)
            return
        }
        lastReceived = now
        if completed { layerKnown(file, now: now, &out) }
        sendHashRequests(now: now, &out)
    }

    mutating func hashRejected(_ key: PeerKey, _ request: HashRequest, now: Double, _ out: inout [Action]) {
        guard let file = layerQueue.answered(request, by: key) else { return }
        layerQueue.retry(request, file: file, refusedBy: key)  // this peer cannot help; ask others
        sendHashRequests(now: now, &out)
    }

    /// The piece layer of `file` is proved: the disk may be looked at if it waited for it,
    /// its pieces may be asked for; once every layer is known the torrent is saved with them.
    mutating func layerKnown(_ file: Int, now: Double, _ out: inout [Action]) {
        switch phase {
        case .layers(var s):
            s.blocking.remove(file)
            phase = .layers(s)
            if s.blocking.isEmpty { return startChecking(s.known, &out) }
        case .downloading:
            var d = takeDownload()!
            d.picker.release(d.known.check.pieces(ofFile: file))
            refillAll(&d, now: now, &out)
            phase = .downloading(d)
        default:
            break
        }
        if layerQueue.isEmpty, let known, known.check.missingLayers.isEmpty {
            out.append(.saveTorrent(known.metainfo, layers: known.check.layers))
        }
    }

    // MARK: the disk

    mutating func startChecking(_ known: Known, _ out: inout [Action]) {
        phase = .checking(known)
        out.append(.saveTorrent(known.metainfo, layers: known.check.layers))
        out.append(.check(known.check, directory: known.directory, recheck: options.recheck))
    }

    /// The disk is checked: serve what is there, and download the rest.
    mutating func checked(_ result: Result<FetchDisk.Start, FetchError>, now: Double, _ out: inout [Action]) {
        guard case .checking(let known) = phase else { return }
        let start: FetchDisk.Start
        switch result {
        case .success(let s): start = s
        case .failure(let e): return fail(e, &out)
        }
        // Files on disk whose layers were unknown: looked at again once their layers are here.
        if !start.unchecked.isEmpty {
            let blocking = start.unchecked.filter { known.check.lacksLayer(file: $0) }
            layerQueue.prioritize(blocking)
            phase = .layers(LayerState(known: known, blocking: Set(blocking)))
            sendHashRequests(now: now, &out)
            if blocking.isEmpty { startChecking(known, &out) }
            return
        }
        let (m, check) = (known.metainfo, known.check)
        var d = DownloadState(known: known, picker: PiecePicker(spans: (0..<m.pieceCount).map { check.span(ofPiece: $0).length }, have: PieceSet(count: m.pieceCount)))
        var updates: [TorrentUpdate] = [.pieces(start.pieces)]
        for p in 0..<start.pieces.count where start.pieces.contains(p) { d.verifiedBytes += Int64(check.span(ofPiece: p).length) }
        // Files holding verified pieces are trusted as they are now (see SeedTorrent.readBlock).
        for (f, g) in start.generations where m.files[f].length > 0 { updates.append(.generation(file: f, g)) }
        for (f, runs) in start.leaves {
            for run in runs {
                let p = Int((m.files[f].offset + Int64(run.index) * Int64(blockSize)) / Int64(m.pieceLength))
                updates += noteLeaves(&d, file: f, piece: p, run.leaves)
            }
        }
        out.append(.update(updates))
        out.append(.ready)
        d.picker.alreadyHave(start.pieces)
        for f in m.files.indices where check.lacksLayer(file: f) { d.picker.hold(check.pieces(ofFile: f)) }
        for (_, peer) in peers { if let has = peer.has { d.picker.peerJoined(has) } }
        for w in waiters { d.picker.prioritize(w.pieces, deadline: w.deadline) }
        if let problem = start.recordProblem { out.append(.report(.recordUnusable(problem))) }
        out.append(.report(.resumed(directory: known.directory, pieces: start.pieces.cardinality, of: start.pieces.count,
                                    fromRecord: start.fromRecord, rechecked: start.rechecked)))
        lastReceived = now
        let haves: [PeerMessage] = (0..<start.pieces.count).filter { start.pieces.contains($0) }.map { .have(UInt32($0)) }
        for key in peers.keys {
            out.append(.attach(key))
            if !haves.isEmpty { out.append(.send(haves, to: key)) }
            updateInterest(key, &d, now: now, &out)
        }
        resolveWaiters(have: d.picker.have, &out)
        if d.picker.isComplete { finish(d, &out) } else { phase = .downloading(d) }
    }
}
