import Locking
import Hashing
import Merkle
import Metainfo
import NIOCore
import PeerWire
import Storage

/// A torrent being seeded: its metainfo, which pieces verified, the Merkle trees of its
/// files and a reader for its data. Shared by every connection to it (and by the disk
/// threads), so mutable state sits behind a mutex.
public final class SeedTorrent: Sendable {
    public let metainfo: Metainfo
    public let directory: String
    public let reader: PieceReader
    /// Files (index into `metainfo.files`) sorted by offset, for mapping reads to files.
    private let fileStarts: [(offset: Int64, index: Int)]
    private let state: Locked<State>

    struct State {
        var pieces: PieceSet
        /// Roots → trees of files that verified (answers to hash requests, checks on reads).
        var trees: [SHA256Digest: MerkleTree]
        /// What each verified file was when it verified (see `readBlock`).
        var generations: [Int: FileGeneration]
        var uploaded: Int64 = 0
        var failedFiles: Set<Int> = []
        var peers = 0
        /// Leaf hashes of verified pieces of files a download is still filling.
        var partialLeaves: [Int: [SHA256Digest]] = [:]
    }

    /// `writable`: a download writes into `directory` through this torrent's reader.
    public init(metainfo: Metainfo, directory: String, data: LocalData, writable: Bool = false) {
        self.metainfo = metainfo
        self.directory = directory
        self.reader = PieceReader(metainfo: metainfo, directory: directory, writable: writable)
        self.fileStarts = metainfo.files.enumerated().filter { $1.length > 0 && !$1.isSymlink }.map { ($1.offset, $0) }
        self.state = Locked(State(pieces: data.pieces, trees: data.trees, generations: data.generations))
    }

    public var pieces: PieceSet { state.withLock { $0.pieces } }
    var trees: [SHA256Digest: MerkleTree] { state.withLock { $0.trees } }
    private func generation(_ file: Int) -> FileGeneration? { state.withLock { $0.generations[file] } }

    // MARK: a download growing the torrent

    /// A piece verified and written: it is served from now on.
    func addPiece(_ p: Int) { state.withLock { $0.pieces.insert(p) } }

    /// A download just wrote into `file`: this is what the file is now (our own write, of
    /// verified bytes), so reads of its verified pieces need no hashing.
    func wrote(file: Int, generation: FileGeneration?) { state.withLock { $0.generations[file] = generation } }

    /// A file is complete: its tree answers hash requests (and checks reads).
    func addTree(_ tree: MerkleTree, file: Int) {
        state.withLock { s in
            s.trees[tree.root] = tree
            s.partialLeaves[file] = nil
        }
    }

    /// Leaf hashes of a piece a download verified in `file`, starting at leaf `first`.
    func addLeaves(file: Int, first: Int, _ leaves: [SHA256Digest]) {
        let count = Int((metainfo.files[file].length + Int64(blockSize) - 1) / Int64(blockSize))
        state.withLock { s in
            if s.partialLeaves[file] == nil { s.partialLeaves[file] = [SHA256Digest](repeating: .zero, count: count) }
            for (i, l) in leaves.enumerated() where first + i < count { s.partialLeaves[file]![first + i] = l }
        }
    }
    public var uploaded: Int64 { state.withLock { $0.uploaded } }
    func addUploaded(_ n: Int) { state.withLock { $0.uploaded += Int64(n) } }

    /// The hashes this torrent answers to in handshakes: truncated v2, then v1.
    public var shortHashes: [[UInt8]] { metainfo.shortHashes }

    /// Size of piece `i` as clients request it. In v2 and hybrid torrents every piece is
    /// addressable at full length (the tail is zero padding); in v1 the last is short.
    func pieceSize(_ i: Int) -> Int {
        if metainfo.version.hasV2 || i < metainfo.pieceCount - 1 { return metainfo.pieceLength }
        let total = metainfo.v1Entries.last.map { $0.offset + $0.length } ?? 0
        return Int(total - Int64(i) * Int64(metainfo.pieceLength))
    }

    // MARK: metadata (BEP 9)

    var metadataSize: Int { metainfo.infoBytes.count }
    var metadataPieceCount: Int { (metadataSize + 16_383) / 16_384 }
    func metadataPiece(_ i: Int) -> [UInt8]? {
        guard i >= 0, i < metadataPieceCount else { return nil }
        return Array(metainfo.infoBytes[(i * 16_384)..<min(metadataSize, (i + 1) * 16_384)])
    }

    // MARK: reading blocks

    public enum ReadError: Error, CustomStringConvertible {
        case notServable(piece: Int)
        /// This read found the file changed and withdrew it: the one time it is reported.
        case changedOnDisk(path: String)
        /// The file was found changed by an earlier read (which reported it).
        case withdrawn(path: String)
        case storage(StorageError)
        public var description: String {
            switch self {
            case .notServable(let p): "piece \(p) is not verified"
            case .changedOnDisk(let p), .withdrawn(let p): "\(p) changed on disk since it was verified; its pieces are no longer served"
            case .storage(let e): e.description
            }
        }
    }

    /// Reads a requested block for a peer. While its file is still the one that verified
    /// (same size, mtime, ctime, inode and device after the read), the bytes are those
    /// that hashed correctly, and peers check every block themselves. A file of another
    /// size, or another file at its path, is withdrawn; one changed in place at its size has
    /// every 16 KiB leaf the block covers checked against its Merkle tree first: a file
    /// edited under a running seeder is caught on the first read of it, never served.
    func readBlock(_ r: BlockRequest, allocator: ByteBufferAllocator) throws(ReadError) -> ByteBuffer {
        let piece = Int(r.piece)
        guard state.withLock({ $0.pieces.contains(piece) }) else { throw .notServable(piece: piece) }
        let offset = Int64(piece) * Int64(metainfo.pieceLength) + Int64(r.begin)
        let length = Int(r.length)
        if !metainfo.version.hasV2 { return try readV1(offset: offset, length: length, piece: piece, allocator: allocator) }
        guard let file = fileIndex(containing: offset) else {
            return try read(offset: offset, length: length, allocator: allocator)  // entirely zero padding
        }
        if let block = try readIfUnchanged(file: file, offset: offset, length: length, allocator: allocator) { return block }
        return try readHashed(offset: offset, length: length, file: file, piece: piece, allocator: allocator)
    }

    /// Reads bytes of `file` (and any padding after it) and returns them if the file is
    /// still exactly the one that verified. One check after the read is enough: a write
    /// before or during it shows up there. nil: the file has no known identity, or changed
    /// in place at its verified size, so its leaves must be hashed. A file that is another
    /// file now (`isAnotherFile`) is withdrawn, even where its old bytes would still hash right.
    private func readIfUnchanged(file: Int, offset: Int64, length: Int, allocator: ByteBufferAllocator) throws(ReadError) -> ByteBuffer? {
        guard let verified = generation(file) else { return nil }
        let bytes = try read(offset: offset, length: length, file: file, allocator: allocator)
        let now = reader.generation(ofTorrentFile: file)
        if now == verified { return bytes }
        if isAnotherFile(file, verified: verified, now: now) { throw withdraw(file) }
        return nil
    }

    /// Whether `file`, whose identity is no longer the verified one, is not the file that
    /// verified at all: another size (appended to, truncated), or another file or none at
    /// its path (renamed over, removed: a descriptor opened before still reads the old
    /// one). Only asked once the identity differs, so it costs nothing on the hot path.
    /// A file that verified shorter than the torrent says is one a download is still
    /// writing: its own writes make it grow, and those are no change.
    private func isAnotherFile(_ file: Int, verified: FileGeneration?, now: FileGeneration?) -> Bool {
        guard let verified else { return false }
        let length = metainfo.files[file].length
        if verified.size == length, let now, now.size != length { return true }
        guard let there = reader.generation(atPathOfTorrentFile: file) else { return true }
        return there.inode != verified.inode || there.device != verified.device
    }

    /// `read`, for bytes of `file`: a read that fails because the file is another one now
    /// (truncated under it, removed) withdraws the file instead of failing as a disk error.
    private func read(offset: Int64, length: Int, file: Int, allocator: ByteBufferAllocator) throws(ReadError) -> ByteBuffer {
        do {
            return try read(offset: offset, length: length, allocator: allocator)
        } catch {
            if isAnotherFile(file, verified: generation(file), now: reader.generation(ofTorrentFile: file)) { throw withdraw(file) }
            throw error
        }
    }

    /// v1 pieces span files and have no per-block hashes: the block is served if every file
    /// under it is still the one that verified; a file that is another file now is withdrawn;
    /// otherwise the whole piece is read and checked against its SHA-1, and a mismatch
    /// withdraws the piece.
    private func readV1(offset: Int64, length: Int, piece: Int, allocator: ByteBufferAllocator) throws(ReadError) -> ByteBuffer {
        let end = offset + Int64(length)
        let under = metainfo.files.indices.filter { i in
            let f = metainfo.files[i]
            return f.length > 0 && f.offset < end && f.offset + f.length > offset
        }
        /// The first file under the block that is another file now.
        func anotherFile(_ now: [FileGeneration?]) -> Int? {
            zip(under, now).first { i, g in let v = generation(i); return g != v && isAnotherFile(i, verified: v, now: g) }?.0
        }
        let block: ByteBuffer
        do {
            block = try read(offset: offset, length: length, allocator: allocator)
        } catch {
            if let f = anotherFile(under.map { reader.generation(ofTorrentFile: $0) }) { throw withdraw(f) }
            throw error
        }
        let now = under.map { reader.generation(ofTorrentFile: $0) }
        if zip(under, now).allSatisfy({ i, g in let v = generation(i); return v != nil && g == v }) { return block }
        if let f = anotherFile(now) { throw withdraw(f) }
        let pieceStart = Int64(piece) * Int64(metainfo.pieceLength)
        let whole = try read(offset: pieceStart, length: pieceSize(piece), allocator: allocator)
        let digest = whole.withUnsafeReadableBytes { SHA1Hasher().hash($0) }
        guard piece < metainfo.v1PieceHashes.count, digest == metainfo.v1PieceHashes[piece] else {
            throw withdraw(pieces: piece..<(piece + 1), files: under, path: under.first.map { metainfo.files[$0].pathString } ?? "piece \(piece)")
        }
        return whole.getSlice(at: whole.readerIndex + Int(offset - pieceStart), length: length)!
    }

    /// Reads contiguous requests with one read and one identity check, returning a slice
    /// per request (no copies). Falls back to one at a time when the run is not in a
    /// single unchanged v2 file.
    func readBlocks(_ requests: [BlockRequest], allocator: ByteBufferAllocator) -> [Result<ByteBuffer, ReadError>] {
        guard requests.count > 1, metainfo.version.hasV2 else {
            return requests.map { r in Result { () throws(ReadError) in try readBlock(r, allocator: allocator) } }
        }
        let first = requests[0]
        let offset = Int64(first.piece) * Int64(metainfo.pieceLength) + Int64(first.begin)
        let total = requests.reduce(0) { $0 + Int($1.length) }
        let pieces = Set(requests.map { Int($0.piece) })
        if let file = fileIndex(containing: offset), fileIndex(containing: offset + Int64(total) - 1) == file,
           let verified = generation(file), state.withLock({ s in pieces.allSatisfy { s.pieces.contains($0) } }),
           let whole = try? read(offset: offset, length: total, allocator: allocator),
           reader.generation(ofTorrentFile: file) == verified {
            var at = 0
            return requests.map { r in
                defer { at += Int(r.length) }
                return .success(whole.getSlice(at: whole.readerIndex + at, length: Int(r.length))!)
            }
        }
        return requests.map { r in Result { () throws(ReadError) in try readBlock(r, allocator: allocator) } }
    }

    /// Reads and checks every leaf the range covers against the file's tree.
    func readHashed(offset: Int64, length: Int, file: Int, piece: Int, allocator: ByteBufferAllocator) throws(ReadError) -> ByteBuffer {
        let f = metainfo.files[file]
        // Widen to whole leaves inside the file, read, verify, then cut out the request.
        let inFile = offset - f.offset
        let firstLeaf = inFile / Int64(blockSize)
        let fileEnd = min(inFile + Int64(length), f.length)
        let lastLeafEnd = min(((fileEnd + Int64(blockSize) - 1) / Int64(blockSize)) * Int64(blockSize), f.length)
        let start = firstLeaf * Int64(blockSize)
        var whole = try read(offset: f.offset + start, length: Int(max(lastLeafEnd, start) - start), file: file, allocator: allocator)
        // The file's leaves: from its tree, or while a download is still filling it, those of
        // the pieces verified so far (zero for the rest, which never match a real hash).
        let leaves: [SHA256Digest]? = f.piecesRoot.flatMap { root in trees[root]?.layers[0] } ?? state.withLock { $0.partialLeaves[file] }
        if let leaves {
            let ok = whole.withUnsafeReadableBytes { raw -> Bool in
                let h = SHA256Hasher()
                var i = 0
                var leaf = Int(firstLeaf)
                while i < raw.count {
                    let n = min(blockSize, raw.count - i)
                    guard leaf < leaves.count, leaves[leaf] != .zero,
                          h.hash(UnsafeRawBufferPointer(rebasing: raw[i..<(i + n)])) == leaves[leaf] else { return false }
                    i += n
                    leaf += 1
                }
                return true
            }
            guard ok else { throw withdraw(file) }
        } else {
            throw .notServable(piece: piece)
        }
        // The request may run past the file's end into zero padding.
        var out = allocator.buffer(capacity: length)
        whole.moveReaderIndex(forwardBy: Int(inFile - start))
        let fromFile = Int(max(0, fileEnd - inFile))
        out.writeImmutableBuffer(whole.readSlice(length: fromFile)!)
        out.writeRepeatingByte(0, count: length - fromFile)
        return out
    }

    /// The event loop's fast path: contiguous requests in one unchanged, verified v2 file,
    /// read only if every byte is in the page cache. nil means "use the disk threads".
    func readBlocksIfCached(_ requests: [BlockRequest], allocator: ByteBufferAllocator) -> [ByteBuffer]? {
        guard metainfo.version.hasV2, let first = requests.first else { return nil }
        let offset = Int64(first.piece) * Int64(metainfo.pieceLength) + Int64(first.begin)
        let total = requests.reduce(0) { $0 + Int($1.length) }
        guard let file = fileIndex(containing: offset), fileIndex(containing: offset + Int64(total) - 1) == file,
              let verified = generation(file),
              state.withLock({ s in requests.allSatisfy { s.pieces.contains(Int($0.piece)) } }) else { return nil }
        var whole = allocator.buffer(capacity: total)
        let ok = whole.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { raw in
            reader.readIfCached(offset: offset, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<total])) ? total : 0
        }
        guard ok == total, reader.generation(ofTorrentFile: file) == verified else { return nil }
        var at = 0
        return requests.map { r in
            defer { at += Int(r.length) }
            return whole.getSlice(at: whole.readerIndex + at, length: Int(r.length))!
        }
    }

    private func read(offset: Int64, length: Int, allocator: ByteBufferAllocator) throws(ReadError) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: length)
        do {
            try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { raw in
                try reader.read(offset: offset, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<length]))
                return length
            }
        } catch let e as StorageError {
            throw .storage(e)
        } catch {
            throw .storage(.unreadable("piece data", reason: String(describing: error)))
        }
        return buffer
    }

    private func fileIndex(containing offset: Int64) -> Int? {
        var lo = 0, hi = fileStarts.count - 1
        guard hi >= 0 else { return nil }
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if fileStarts[mid].offset <= offset { lo = mid } else { hi = mid - 1 }
        }
        let f = metainfo.files[fileStarts[lo].index]
        let pl = Int64(metainfo.pieceLength)
        let alignedEnd = f.offset + (f.length + pl - 1) / pl * pl
        return offset >= f.offset && offset < alignedEnd ? fileStarts[lo].index : nil
    }

    /// Stops serving a file that is no longer the one that verified: its pieces leave the
    /// piece set. The error says whether this read was the first to find it (`changedOnDisk`,
    /// which the caller reports) or a later one (`withdrawn`): each file is reported once,
    /// whether a peer or the gateway found it.
    private func withdraw(_ file: Int) -> ReadError {
        let f = metainfo.files[file]
        let pl = Int64(metainfo.pieceLength)
        let pieces = Int(f.offset / pl)..<Int((f.offset + f.length + pl - 1) / pl)
        return withdraw(pieces: pieces, files: [file], path: f.pathString)
    }

    /// Takes `pieces` out of the piece set and marks `files` changed: `changedOnDisk` if one
    /// of them was not marked before, else `withdrawn`.
    private func withdraw(pieces: Range<Int>, files: [Int], path: String) -> ReadError {
        let first = state.withLock { s in
            var kept = PieceSet(count: s.pieces.count)
            for i in 0..<s.pieces.count where s.pieces.contains(i) && !pieces.contains(i) { kept.insert(i) }
            s.pieces = kept
            var first = false
            for f in files where s.failedFiles.insert(f).inserted { first = true }
            return first
        }
        return first ? .changedOnDisk(path: path) : .withdrawn(path: path)
    }

    /// Bytes `offset..<offset+length` of file `file`, for the HTTP gateway: only if every
    /// piece under them verified, and only as they verified — read as they are while the
    /// file is still the one that verified (identity checked after the read, as for peers);
    /// a file of another size, or another file at its path, is withdrawn; one changed in
    /// place at its size has every 16 KiB leaf hashed against its tree first. A withdrawal throws `changedOnDisk` the first
    /// time (to be reported) and `withdrawn` after.
    public func readVerified(file: Int, offset: Int64, length: Int, allocator: ByteBufferAllocator = ByteBufferAllocator()) throws(ReadError) -> ByteBuffer {
        let f = metainfo.files[file]
        precondition(offset >= 0 && offset + Int64(length) <= f.length)
        guard length > 0 else { return allocator.buffer(capacity: 0) }
        let start = f.offset + offset
        let pl = Int64(metainfo.pieceLength)
        let first = Int(start / pl), last = Int((start + Int64(length) - 1) / pl)
        let (servable, failed) = state.withLock { s in ((first...last).allSatisfy { s.pieces.contains($0) }, s.failedFiles.contains(file)) }
        guard servable else { throw failed ? .withdrawn(path: f.pathString) : .notServable(piece: first) }
        if let bytes = try readIfUnchanged(file: file, offset: start, length: length, allocator: allocator) { return bytes }
        return try readHashed(offset: start, length: length, file: file, piece: first, allocator: allocator)
    }

    /// `readVerified`'s fast path, which never blocks on the disk: bytes `offset..<offset+length`
    /// of file `file` into `buffer` (cleared first; its storage reused when nothing else holds
    /// it), only if every piece under them verified, every byte is in the page cache, and the
    /// file is still exactly the one that verified (identity checked after the read, as
    /// `readVerified` does). false: nothing to use; `readVerified` (which may block, hash, or
    /// withdraw a changed file) decides.
    public func readVerifiedIfCached(file: Int, offset: Int64, length: Int, into buffer: inout ByteBuffer) -> Bool {
        let f = metainfo.files[file]
        precondition(offset >= 0 && offset + Int64(length) <= f.length)
        let start = f.offset + offset
        let pl = Int64(metainfo.pieceLength)
        let first = Int(start / pl), last = Int((start + Int64(max(length, 1)) - 1) / pl)
        guard let verified = generation(file),
              state.withLock({ s in (first...last).allSatisfy { s.pieces.contains($0) } }) else { return false }
        buffer.clear(minimumCapacity: length)
        let got = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { raw in
            reader.readIfCached(offset: start, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<length])) ? length : 0
        }
        guard got == length, reader.generation(ofTorrentFile: file) == verified else {
            buffer.clear()
            return false
        }
        return true
    }

    /// Whether every piece under bytes `range` of file `file` has verified.
    public func isVerified(file: Int, range: Range<Int64>) -> Bool {
        let f = metainfo.files[file]
        guard !range.isEmpty else { return true }
        let pl = Int64(metainfo.pieceLength)
        let first = Int((f.offset + range.lowerBound) / pl), last = Int((f.offset + range.upperBound - 1) / pl)
        return state.withLock { s in (first...last).allSatisfy { s.pieces.contains($0) } }
    }

    /// Whether file `file` is still exactly the one that verified (size, mtime, ctime, inode, device).
    /// When it is not, a reader must expect `readVerified` to hash, and possibly to fail.
    public func isUnchanged(file: Int) -> Bool {
        guard let verified = generation(file) else { return false }
        return reader.generation(ofTorrentFile: file) == verified
    }

    /// Peers connected to this torrent (for status pages).
    public var peerCount: Int { state.withLock { $0.peers } }
    func peerJoined(_ delta: Int) { state.withLock { $0.peers += delta } }

    public var changedFiles: [String] { state.withLock { $0.failedFiles.sorted().map { metainfo.files[$0].pathString } } }
}
