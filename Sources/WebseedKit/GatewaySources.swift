import Locking
import Gateway
import Metainfo
import NIOCore
import NIOPosix
import Swarm

/// A site seeded from local data, checked when the seeder started.
struct SeededSite: SiteContent {
    let torrent: SeedTorrent

    var metainfo: Metainfo? { torrent.metainfo }

    func ready(deadline: NIODeadline) async throws -> Metainfo { torrent.metainfo }

    func bytes(file: Int, range: Range<Int64>, deadline: NIODeadline) -> VerifiedChunks {
        if range.count <= inlineRead { return VerifiedChunks(ready: Result { try readNow(torrent, file, range) }) }
        return verifiedChunks(file: file, range: range) { torrent }
    }

    var stats: SiteStats {
        let total = torrent.metainfo.totalSize
        let pieces = torrent.pieces
        let verified = pieces.isFull ? total : Int64(Double(total) * Double(pieces.cardinality) / Double(max(1, pieces.count)))
        return SiteStats(uploaded: torrent.uploaded, peers: torrent.peerCount, verified: verified, total: total)
    }
}

/// A site fetched from the swarm on demand: a request asks for its range before anything
/// else, waits for it to verify, then reads it like a seeded site (it is one by then).
struct FetchedSite: SiteContent {
    let handle: FetchHandle

    var metainfo: Metainfo? { handle.torrent?.metainfo }

    func ready(deadline: NIODeadline) async throws -> Metainfo {
        try await handle.ready().get(until: deadline).metainfo
    }

    func bytes(file: Int, range: Range<Int64>, deadline: NIODeadline) -> VerifiedChunks {
        if range.count <= inlineRead, let torrent = handle.torrent, torrent.isVerified(file: file, range: range) {
            return VerifiedChunks(ready: Result { try readNow(torrent, file, range) })
        }
        let handle = handle
        return verifiedChunks(file: file, range: range) {
            let torrent = try await handle.ready().get(until: deadline)
            if !torrent.isVerified(file: file, range: range) {
                let priority = Double(NIODeadline.now().uptimeNanoseconds) / 1e9  // earlier requests first
                try await handle.want(file: file, range: range, deadline: priority).get(until: deadline)
            }
            return torrent
        }
    }

    var stats: SiteStats {
        let progress = handle.progress
        let torrent = handle.torrent
        let total = max(torrent?.metainfo.totalSize ?? 0, progress.total)
        return SiteStats(uploaded: torrent?.uploaded ?? 0, downloaded: progress.downloaded, peers: torrent?.peerCount ?? 0,
                         verified: progress.complete ? total : progress.verified, total: total)
    }
}

/// Reads of at most this much happen inline; larger ones, and each chunk of a body, come from
/// the page cache inline when every byte is there (`readVerifiedIfCached`), else on the pool.
private let inlineRead = 64 << 10
/// A body's chunks: large enough that the hops and syscalls per chunk cost little per GB (256
/// KiB to 1 MiB measured alike), small enough to stay in a core's L2 cache between the read
/// and the socket's copy, and that a response holds about 1.5 MiB at most (two chunks kept
/// for reuse, and one the connection is still writing).
private let chunkSize = 512 << 10

/// Where a body's reading stands: the torrent once known, the next offset, and the buffers of
/// the last two chunks, reused once the connection has written them (a buffer it still holds
/// is never written into: `ByteBuffer.clear` then allocates anew).
private struct Cursor {
    var torrent: SeedTorrent?
    var at: Int64
    var spares: [ByteBuffer] = []
}

/// Bytes `range` of `file` through `SeedTorrent.readVerified`, one chunk per pull. The first
/// pull gets the torrent (waiting if it must) and, when the file is no longer exactly the one
/// that verified, checks the whole range before yielding anything: a change found anywhere
/// becomes an error status, not a cut-off body (unchanged files stream at once; every chunk
/// is checked anyway).
private func verifiedChunks(file: Int, range: Range<Int64>,
                            torrent: @escaping @Sendable () async throws -> SeedTorrent) -> VerifiedChunks {
    let state = Locked(Cursor(at: range.lowerBound))
    return VerifiedChunks {
        // Taken out of the state, so the spares' only references are this copy's and the connection's.
        var c = state.withLock { s in
            defer { s.spares = [] }
            return s
        }
        if c.torrent == nil {
            let got = try await torrent()
            if range.count > chunkSize, !got.isUnchanged(file: file) {
                var checked = range.lowerBound
                while checked < range.upperBound {
                    let n = Int(min(Int64(chunkSize), range.upperBound - checked))
                    _ = try await read(got, file, checked, n)
                    checked += Int64(n)
                }
            }
            c.torrent = got
        }
        guard let t = c.torrent, c.at < range.upperBound else { return nil }
        let n = Int(min(Int64(chunkSize), range.upperBound - c.at))
        let bytes: ByteBuffer
        // The oldest spare: the connection has most likely written it by now.
        var buffer = c.spares.count == 2 ? c.spares.removeFirst() : ByteBufferAllocator().buffer(capacity: n)
        if n > inlineRead, t.readVerifiedIfCached(file: file, offset: c.at, length: n, into: &buffer) {
            bytes = buffer
        } else {
            bytes = try await read(t, file, c.at, n)
        }
        c.at += Int64(n)
        c.spares.append(bytes)
        state.withLock { $0 = c }
        return bytes
    }
}

private func read(_ torrent: SeedTorrent, _ file: Int, _ offset: Int64, _ length: Int) async throws -> ByteBuffer {
    if length <= inlineRead { return try readNow(torrent, file, offset..<offset + Int64(length)) }
    return try await NIOThreadPool.singleton.runIfActive { try readNow(torrent, file, offset..<offset + Int64(length)) }
}

/// A read on the calling thread (small ranges: the page cache answers at once).
private func readNow(_ torrent: SeedTorrent, _ file: Int, _ range: Range<Int64>) throws -> ByteBuffer {
    do {
        return try torrent.readVerified(file: file, offset: range.lowerBound, length: Int(range.count))
    } catch .changedOnDisk(let path) {
        throw SiteContentError.changedOnDisk(path: path)
    }
}

extension EventLoopFuture where Value: Sendable {
    /// The value, or `SiteContentError.timedOut` once `deadline` passes (the work goes on).
    fileprivate func get(until deadline: NIODeadline) async throws -> Value {
        let promise = eventLoop.makePromise(of: Value.self)
        let timer = eventLoop.scheduleTask(deadline: deadline) { promise.fail(SiteContentError.timedOut) }
        cascade(to: promise)  // whichever completes it first wins; the other is ignored
        defer { timer.cancel() }
        return try await promise.futureResult.get()
    }
}
