import Hashing
import Metainfo
import NIOCore
import PeerWire
import Storage

/// Getting the torrent itself: the info dict over BEP 9 `ut_metadata` (one peer at a time,
/// checked against the info hash) and the piece layers over BEP 52 hash requests (each
/// answer proved up to its file's pieces root).
extension Fetch {
    // MARK: metadata (BEP 9)

    func extended(_ key: ObjectIdentifier, id: UInt8, payload: ByteBuffer, now: Double) {
        let bytes = Array(buffer: payload)
        if id == 0 {
            guard let h = try? ExtensionHandshake(decoding: bytes) else { return }
            if let m = h.messages["ut_metadata"] { peers[key]!.metadataID = m == 0 ? nil : m }
            if let s = h.metadataSize, s > 0, s <= Self.maxMetadataSize { peers[key]!.metadataSize = s }
            if let q = h.requestQueue, q > 0 { peers[key]!.requestLimit = min(q, Self.maxQueue) }
            if phase == .metadata { startMetadata() }
            return
        }
        guard id == PeerSession.utMetadataID, phase == .metadata, let message = try? MetadataMessage.decode(bytes) else { return }
        switch message {
        case .data(let piece, let total, let data):
            guard var m = meta, m.from == key, total == m.size, piece >= 0, piece < m.pieces.count, m.pieces[piece] == nil else { return }
            let expected = piece == m.pieces.count - 1 ? m.size - piece * MetadataMessage.pieceSize : MetadataMessage.pieceSize
            guard data.count == expected else {
                meta = nil
                ban(peers[key]!.link.host, reason: "metadata piece \(piece) has the wrong size")
                return
            }
            m.pieces[piece] = data
            meta = m
            lastReceived = now
            if m.pieces.allSatisfy({ $0 != nil }) { metadataComplete(from: key, bytes: m.pieces.flatMap { $0! }, now: now) }
        case .reject:
            if meta?.from == key {
                meta = nil
                metaFailed.insert(key)
                startMetadata()
            }
        case .request:
            break  // answered by the seeding side (rejected: we have nothing yet)
        }
    }

    /// Asks one peer that has the metadata for all of it (one source: a mismatch names it).
    func startMetadata() {
        guard phase == .metadata, meta == nil else { return }
        guard let (key, peer) = peers.first(where: { $0.value.metadataID != nil && $0.value.metadataSize != nil && !metaFailed.contains($0.key) }),
              let id = peer.metadataID, let size = peer.metadataSize else { return }
        let count = (size + MetadataMessage.pieceSize - 1) / MetadataMessage.pieceSize
        meta = (key, size, [[UInt8]?](repeating: nil, count: count), nowSeconds())
        peer.link.send((0..<count).map { .extended(id: id, payload: ByteBuffer(bytes: MetadataMessage.request(piece: $0).encode())) })
    }

    func metadataComplete(from key: ObjectIdentifier, bytes: [UInt8], now: Double) {
        meta = nil
        let host = peers[key]?.link.host ?? "?"
        let matches = v2Hash.map { Digests.sha256(bytes) == $0 } ?? (v1Hash.map { Digests.sha1(bytes) == $0 } ?? false)
        guard matches else {
            metaFailed.insert(key)
            ban(host, reason: "metadata does not match the info hash")
            startMetadata()
            return
        }
        let m: Metainfo
        do {
            m = try Metainfo(bytes: Array("d4:info".utf8) + bytes + Array("e".utf8))
        } catch {
            return fail(.invalidMetadata(error.description))
        }
        if let v1 = v1Hash, m.v1InfoHash != v1 { return fail(.invalidMetadata("it is not the torrent the v1 info hash names")) }
        haveMetadata(m, from: peers[key]?.link.address, now: now)
    }

    /// The torrent is known: fetch missing piece layers, then look at the disk.
    func haveMetadata(_ m: Metainfo, from: String?, now: Double) {
        guard metainfo == nil else { return }
        metainfo = m
        check = PieceCheck(metainfo: m)
        directory = options.directory ?? (options.defaultParent + "/" + safeName(m.name))
        onEvent(.metadata(m, directory: directory, from: from))
        // Decode what peers said before the piece count was known.
        for (key, peer) in peers {
            if let all = peer.rawAll { setHas(key, all ? .all : .some(PieceSet(count: m.pieceCount))) }
            if let bits = peer.rawBitfield {
                guard let set = PieceSet(bitfield: bits, count: m.pieceCount) else { peer.link.disconnect(reason: "malformed bitfield"); continue }
                setHas(key, .some(set))
            }
            for h in peer.rawHaves where h < m.pieceCount { addHave(key, h) }
        }
        lastReceived = now
        for file in check!.missingLayers {
            for r in check!.layerRequests(file: file) { hashWanted.append((r, file)) }
        }
        if hashWanted.isEmpty { startChecking() } else { phase = .layers; sendHashRequests(now: now) }
    }

    func safeName(_ name: String) -> String {
        let cleaned = String(name.map { $0 == "/" ? "_" : $0 })
        return cleaned.isEmpty || cleaned == "." || cleaned == ".." ? "download" : cleaned
    }

    // MARK: piece layers (BEP 52 hash requests)

    func sendHashRequests(now: Double) {
        guard phase == .layers else { return }
        while let (request, file) = hashWanted.first {
            guard let (key, peer) = peers.first(where: { $0.value.link.isV2 && $0.value.hashRequests < 4 }) else { return }
            hashWanted.removeFirst()
            hashSent[request] = (file, key, now)
            peers[key]!.hashRequests += 1
            peer.link.send([.hashRequest(request)])
        }
    }

    func hashes(_ key: ObjectIdentifier, _ request: HashRequest, _ data: ByteBuffer, now: Double) {
        guard let sent = hashSent[request], sent.peer == key, var check else { return }
        hashSent[request] = nil
        peers[key]!.hashRequests -= 1
        var digests: [SHA256Digest] = []
        var data = data
        while data.readableBytes >= 32, let d = data.readBytes(length: 32) { digests.append(SHA256Digest(bytes: d)!) }
        guard check.accept(hashes: digests, for: request, file: sent.file) else {
            hashWanted.append((request, sent.file))
            ban(peers[key]!.link.host, reason: "hashes for \(check.metainfo.files[sent.file].pathString) do not match its pieces root")
            sendHashRequests(now: now)
            return
        }
        self.check = check
        lastReceived = now
        if hashWanted.isEmpty, hashSent.isEmpty, check.missingLayers.isEmpty { startChecking() } else { sendHashRequests(now: now) }
    }
}
