import Hashing
import Metainfo
import NIOCore
import Storage

#if canImport(Glibc)
import Glibc
#endif

/// The machine's disk work, run on the disk threads (the work itself is in `FetchDisk`);
/// each answer goes back to the machine as an event.
extension Fetch {
    /// A torrent this fetch saved earlier, if it parses (the machine checks it is this one).
    func savedTorrent() -> Metainfo? {
        let fd = open(torrentPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size > 0, st.st_size < 64 << 20 else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        guard bytes.withUnsafeMutableBytes({ read(fd, $0.baseAddress, $0.count) }) == bytes.count else { return nil }
        return try? Metainfo(bytes: bytes)
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

    func startChecking(_ check: PieceCheck, directory: String, recheck: Bool) {
        let m = check.metainfo
        let torrent = SeedTorrent(metainfo: m, directory: directory, data: LocalData(downloaded: PieceSet(count: m.pieceCount), generations: [:]), writable: true)
        store = torrent
        let (recordPath, reuse) = (self.recordPath, options.reuse)
        threadPool.runIfActive(eventLoop: loop) {
            Result { () throws(FetchError) in
                try FetchDisk.start(check: check, reader: torrent.reader, directory: directory, recordPath: recordPath, recheck: recheck, reuse: reuse)
            }
        }.assumeIsolated().whenComplete { [self] result in
            let outcome: Result<FetchDisk.Start, FetchError> = switch result {
            case .success(let r): r
            case .failure(let e): .failure(.storage(.unreadable(directory, reason: "\(e)")))
            }
            run(.checked(outcome), now: clock())
        }
    }

    func verifyAndWrite(_ p: Int, data: ByteBuffer, check: PieceCheck) {
        guard let reader = store?.reader else { return }
        threadPool.runIfActive(eventLoop: loop) { FetchDisk.verifyAndWrite(check: check, reader: reader, piece: p, data: data) }
            .assumeIsolated().whenComplete { [self] result in
                let written: FetchDisk.Written = switch result {
                case .success(let w): w
                case .failure(let e): .writeFailed(.writeFailed(check.metainfo.name, reason: "\(e)"))
                }
                run(.written(piece: p, written), now: clock())
            }
    }

    func saveRecord(_ pieces: PieceSet) {
        guard let store else { return }
        let path = recordPath
        threadPool.runIfActive(eventLoop: loop) {
            Result { () throws(FetchError) in
                try FetchDisk.saveRecord(metainfo: store.metainfo, reader: store.reader, directory: store.directory, pieces: pieces, path: path)
            }
        }.assumeIsolated().whenComplete { [self] result in
            let error: FetchError? = if case .success(.failure(let e)) = result { e } else { nil }
            run(.recordSaved(error), now: clock())
        }
    }

    func finish(_ check: PieceCheck, leaves: [Int: [SHA256Digest]], known: [Int: Int]) {
        guard let store else { return }
        let recordPath = self.recordPath
        threadPool.runIfActive(eventLoop: loop) {
            Result { () throws(FetchError) in
                try FetchDisk.finish(check: check, reader: store.reader, directory: store.directory, leaves: leaves, known: known, recordPath: recordPath)
            }
        }.assumeIsolated().whenComplete { [self] outcome in
            let result: Result<FetchDisk.Finished, FetchError> = switch outcome {
            case .success(let r): r
            case .failure(let e): .failure(.storage(.writeFailed(store.directory, reason: "\(e)")))
            }
            run(.finished(result), now: clock())
        }
    }
}
