import Hashing
import Merkle
import Metainfo
import NIOCore
import PeerWire
import Storage

/// Blocks: asking for them, taking them in, and what the disk threads say about the pieces
/// they make. Every received block is decided on in `receivedBlock`.
extension FetchMachine {
    /// A block arrived: it must have been asked of this peer (or been cancelled after an
    /// end-game duplicate); it goes into its piece, which is verified once whole.
    mutating func receivedBlock(_ key: PeerKey, _ r: BlockRequest, _ data: ByteBuffer, now: Double, _ out: inout [Action]) {
        guard peers[key]!.outstanding.removeValue(forKey: r) != nil else {
            if peers[key]!.cancelled.remove(r) != nil { return }  // asked elsewhere too (end-game), or timed out
            return out.append(.disconnect(key, .unrequestedBlock(r)))
        }
        peers[key]!.window += data.readableBytes
        peers[key]!.received += Int64(data.readableBytes)
        downloaded += Int64(data.readableBytes)
        lastReceived = now
        guard var d = takeDownload() else { return }
        defer { phase = .downloading(d) }
        guard let complete = d.picker.received(r) else { return refill(key, &d, now: now, &out) }
        let p = Int(r.piece)
        // Taken out of the dictionary while written to, so the buffer is not copied.
        var entry = d.assembling.removeValue(forKey: p) ?? (ByteBuffer(), [])
        if entry.buffer.capacity == 0 {
            let length = d.known.check.span(ofPiece: p).length
            entry.buffer = ByteBufferAllocator().buffer(capacity: length)
            entry.buffer.writeRepeatingByte(0, count: length)
            d.assemblingBytes += length
        }
        entry.buffer.setBuffer(data, at: Int(r.begin))
        entry.from.insert(peers[key]!.info.host)
        // End-game: anyone else asked for this block need not send it.
        for (other, o) in peers where other != key && o.outstanding[r] != nil {
            peers[other]!.outstanding[r] = nil
            peers[other]!.cancelled.insert(r)
            out.append(.send([.cancel(r)], to: other))
        }
        if complete {
            d.assemblingBytes -= entry.buffer.readableBytes
            d.pendingDisk += entry.buffer.readableBytes
            d.verifying[p] = entry.from
            out.append(.verifyAndWrite(piece: p, data: entry.buffer, check: d.known.check))
        } else {
            d.assembling[p] = entry
        }
        refill(key, &d, now: now, &out)
    }

    /// Tops up a peer's requests to its queue depth.
    mutating func refill(_ key: PeerKey, _ d: inout DownloadState, now: Double, _ out: inout [Action]) {
        guard d.pendingDisk < Self.maxPendingDisk, let peer = peers[key], !peer.choking, peer.interested, let has = peer.has else { return }
        let limit = min(peer.depth, peer.requestLimit)
        let room = limit - peer.outstanding.count
        // Requests go out in batches (one write for many), topped up at a quarter gone.
        guard room > 0, room >= min(16, limit / 4) || peer.outstanding.isEmpty else { return }
        // Partial pieces are held in memory whole: beyond the budget, finish those first.
        let startNew = d.assemblingBytes + d.pendingDisk < Self.maxPendingDisk * 2
        let picks = d.picker.pick(for: key, has: has, count: room, now: now, startNew: startNew) { r in
            peer.outstanding[r] != nil || peer.refused.contains(r)
        }
        guard !picks.isEmpty else { return }
        for r in picks { peers[key]!.outstanding[r] = now }
        out.append(.send(picks.map { .request($0) }, to: key))
    }

    mutating func refillAll(_ d: inout DownloadState, now: Double, _ out: inout [Action]) {
        for key in peers.keys { refill(key, &d, now: now, &out) }
    }

    // MARK: what the disk threads say

    mutating func written(_ p: Int, _ outcome: FetchDisk.Written, now: Double, _ out: inout [Action]) {
        guard var d = takeDownload() else { return }  // failed meanwhile (finishing has nothing at the disk)
        let sources = d.verifying.removeValue(forKey: p) ?? []
        let wasHeld = d.pendingDisk >= Self.maxPendingDisk
        d.pendingDisk -= d.known.check.span(ofPiece: p).length
        switch outcome {
        case .ok(let leaves, let generation):
            pieceVerified(p, &d, leaves: leaves, generation: generation, &out)
            if d.picker.isComplete { return finish(d, &out) }
            if wasHeld && d.pendingDisk < Self.maxPendingDisk { refillAll(&d, now: now, &out) }
        case .mismatch(let why):
            out.append(.report(.hashFailed(piece: p)))
            if sources.count == 1, let host = sources.first {
                d.picker.failed(p, singleSource: false)
                ban(host, .pieceMismatch(why), &out)
            } else {
                d.picker.failed(p, singleSource: true)  // who lied is unknown: next time from one peer only
            }
            refillAll(&d, now: now, &out)
        case .writeFailed(let e):
            phase = .downloading(d)
            return fail(.storage(e), &out)
        }
        phase = .downloading(d)
    }

    mutating func pieceVerified(_ p: Int, _ d: inout DownloadState, leaves: [SHA256Digest], generation: FileGeneration?, _ out: inout [Action]) {
        d.picker.verified(p)
        d.verifiedBytes += Int64(d.known.check.span(ofPiece: p).length)
        d.recordDirty = true
        var updates: [TorrentUpdate] = [.piece(p)]
        if let f = d.known.check.file(ofPiece: p) {
            updates.append(.generation(file: f, generation))
            updates += noteLeaves(&d, file: f, piece: p, leaves)
        }
        out.append(.update(updates))
        for key in peers.keys { out.append(.send([.have(UInt32(p))], to: key)) }
        resolveWaiters(have: d.picker.have, &out)
    }

    /// Keeps a piece's leaf hashes for its file's tree; returns the torrent's update.
    func noteLeaves(_ d: inout DownloadState, file f: Int, piece p: Int, _ leaves: [SHA256Digest]) -> [TorrentUpdate] {
        let m = d.known.metainfo
        let file = m.files[f]
        let count = Int((file.length + Int64(blockSize) - 1) / Int64(blockSize))
        if d.fileLeaves[f] == nil { d.fileLeaves[f] = [SHA256Digest](repeating: .zero, count: count) }
        let first = Int((Int64(p) * Int64(m.pieceLength) - file.offset) / Int64(blockSize))
        for (i, l) in leaves.enumerated() where first + i < count { d.fileLeaves[f]![first + i] = l }
        d.leavesKnown[f, default: 0] += leaves.count
        return [.leaves(file: f, first: first, leaves)]
    }

    // MARK: the end

    mutating func finish(_ d: DownloadState, _ out: inout [Action]) {
        out.append(.finish(d.known.check, leaves: d.fileLeaves, known: d.leavesKnown))
        phase = .finishing(d)
    }

    mutating func finished(_ result: Result<FetchDisk.Finished, FetchError>, now: Double, _ out: inout [Action]) {
        guard case .finishing(let d) = phase else { return }
        let done: FetchDisk.Finished
        switch result {
        case .success(let f): done = f
        case .failure(let e): return fail(e, &out)
        }
        var updates: [TorrentUpdate] = done.trees.map { .tree(file: $0.file, $0.tree) }
        updates += done.generations.map { .generation(file: $0.key, $0.value) }
        out.append(.update(updates))
        phase = .complete(d.known, verified: d.verifiedBytes)
        out.append(.publish)
        out.append(.report(.complete(d.known.metainfo, directory: d.known.directory, seconds: now - started)))
        resolveWaiters(&out)
        for (key, peer) in peers {
            if case .all? = peer.has { out.append(.disconnect(key, .bothSeeds)) } else { out.append(.send([.notInterested], to: key)) }
        }
    }

    // MARK: the resume record

    mutating func saveRecordIfDue(_ d: inout DownloadState, now: Double, _ out: inout [Action]) {
        guard d.recordDirty, !d.savingRecord, now - d.lastRecordSave >= 1 else { return }
        d.recordDirty = false
        d.savingRecord = true
        d.lastRecordSave = now
        out.append(.saveRecord(d.picker.have))
    }

    mutating func recordSaved(_ error: FetchError?, _ out: inout [Action]) {
        if var d = takeDownload() {
            d.savingRecord = false
            phase = .downloading(d)
        }
        if let error { fail(error, &out) }
    }
}
