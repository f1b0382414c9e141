import Hashing
import Merkle
import Metainfo
import NIOCore
import Storage

/// A fetch's steps that go through the disk threads: checking the output folder and what
/// it holds, saving the torrent, finishing the files. (The work itself is in `FetchDisk`.)
extension Fetch {
    // MARK: disk

    func startChecking() {
        guard let m = metainfo, let check else { return }
        phase = .checking
        saveTorrent(m, layers: check.layers)
        let torrent = SeedTorrent(metainfo: m, directory: directory, data: LocalData(downloaded: PieceSet(count: m.pieceCount), generations: [:]), writable: true)
        let (directory, recordPath, recheck) = (self.directory, self.recordPath, options.recheck)
        threadPool.runIfActive(eventLoop: loop) {
            Result { () throws(FetchError) in try FetchDisk.start(check: check, reader: torrent.reader, directory: directory, recordPath: recordPath, recheck: recheck) }
        }.assumeIsolated().whenComplete { [self] result in
            guard phase == .checking else { return }
            switch result {
            case .success(.success(let start)): begin(torrent, start)
            case .success(.failure(let e)): fail(e)
            case .failure(let e): fail(.storage(.unreadable(directory, reason: "\(e)")))
            }
        }
    }

    func begin(_ torrent: SeedTorrent, _ start: FetchDisk.Start) {
        guard let check else { return }
        for p in 0..<start.pieces.count where start.pieces.contains(p) {
            torrent.addPiece(p)
            verifiedBytes += Int64(check.span(ofPiece: p).length)
        }
        for (f, g) in start.generations where (check.metainfo.files[f].length > 0) {
            // Files holding verified pieces are trusted as they are now (see SeedTorrent.readBlock).
            torrent.wrote(file: f, generation: g)
        }
        self.torrent = torrent
        for (f, runs) in start.leaves {
            for run in runs {
                let p = Int((check.metainfo.files[f].offset + Int64(run.index) * Int64(blockSize)) / Int64(check.metainfo.pieceLength))
                noteLeaves(file: f, piece: p, run.leaves)
            }
        }
        published.set(torrent)
        for w in readyWaiters { w.succeed(torrent) }
        readyWaiters.removeAll()
        var picker = PiecePicker(spans: (0..<check.metainfo.pieceCount).map { check.span(ofPiece: $0).length }, have: PieceSet(count: check.metainfo.pieceCount))
        picker.alreadyHave(start.pieces)
        for (_, peer) in peers { if let has = peer.has { picker.peerJoined(has) } }
        self.picker = picker
        onEvent(.resumed(directory: directory, pieces: start.pieces.cardinality, of: start.pieces.count, fromRecord: start.fromRecord, rechecked: start.rechecked))
        phase = .downloading
        lastReceived = nowSeconds()
        for (key, peer) in peers {
            peer.link.attach(torrent)
            for p in 0..<start.pieces.count where start.pieces.contains(p) { peer.link.send([.have(UInt32(p))]) }
            updateInterest(key)
        }
        if picker.isComplete { finish() }
    }

    func saveTorrent(_ m: Metainfo, layers: [SHA256Digest: [SHA256Digest]]) {
        var out = Array("d4:info".utf8) + m.infoBytes
        if !layers.isEmpty {
            out += Array("12:piece layersd".utf8)
            for (root, hashes) in layers.sorted(by: { $0.key.bytes.lexicographicallyPrecedes($1.key.bytes) }) {
                out += Array("32:".utf8) + root.bytes + Array("\(hashes.count * 32):".utf8)
                for h in hashes { out += h.bytes }
            }
            out += Array("e".utf8)
        }
        out += Array("e".utf8)
        let (path, bytes) = (torrentPath, out)
        threadPool.runIfActive(eventLoop: loop) { try? AtomicFile.write(bytes, to: path, overwrite: true) }.whenComplete { _ in }
    }

    func finish() {
        guard phase == .downloading, let check, let torrent else { return }
        phase = .finishing
        let (leaves, known, directory, recordPath) = (fileLeaves, leavesKnown, self.directory, self.recordPath)
        threadPool.runIfActive(eventLoop: loop) {
            Result { () throws(FetchError) in
                try FetchDisk.finish(check: check, reader: torrent.reader, directory: directory, leaves: leaves, known: known, recordPath: recordPath)
            }
        }.assumeIsolated().whenComplete { [self] outcome in
            let result: Result<FetchDisk.Finished, any Error> = outcome.flatMap { r in r.mapError { $0 as any Error } }
            switch result {
            case .success(let done):
                let (trees, generations) = (done.trees, done.generations)
                for (f, t) in trees { torrent.addTree(t, file: f) }
                for (f, g) in generations { torrent.wrote(file: f, generation: g) }
                fileLeaves = [:]
                phase = .complete
                recordDirty = false
                published.set(progress)
                onEvent(.complete(check.metainfo, directory: directory, seconds: nowSeconds() - started))
                resolveWaiters()
                // Two seeds have nothing to say to each other.
                for (_, peer) in peers {
                    if case .all? = peer.has { peer.link.disconnect(reason: "both sides are seeds") }
                    else { peer.link.send([.notInterested]) }
                }
            case .failure(let e as FetchError): fail(e)
            case .failure(let e): fail(.storage(.writeFailed(directory, reason: "\(e)")))
            }
        }
    }

    func fail(_ e: FetchError) {
        guard phase != .failed, phase != .complete else { return }
        phase = .failed
        published.set(progress)
        for w in waiters { w.promise.fail(e) }
        for w in readyWaiters { w.fail(e) }
        readyWaiters.removeAll()
        waiters.removeAll()
        onEvent(.failed(e))
    }
}
