import Dispatch
import Hashing
import Merkle
import Metainfo
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Counts bytes hashed so far; read from another thread to draw progress.
public final class HashProgress: Sendable {
    public let totalBytes: Int64
    private let done = Atomic<Int64>(0)
    public init(totalBytes: Int64) { self.totalBytes = totalBytes }
    public var bytesDone: Int64 { done.load(ordering: .relaxed) }
    func add(_ n: Int) { done.add(Int64(n), ordering: .relaxed) }
}

/// Hashes the content of many files in one pass, in parallel across cores: each file is
/// read once, feeding SHA-256 block leaves and, for hybrid torrents, SHA-1 piece hashes
/// from the same buffer. Work is cut into units of whole pieces (at least 4 MiB) so one
/// large file keeps every core busy just as many small files do.
public enum ContentHasher {
    public struct Options: Sendable {
        public var pieceLength: Int
        /// Also compute v1 SHA-1 piece hashes.
        public var hybrid: Bool
        /// Single-file hybrid: the last piece is hashed at its real length, not padded.
        public var singleFile = false
        public var threads = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        public init(pieceLength: Int, hybrid: Bool) {
            self.pieceLength = pieceLength
            self.hybrid = hybrid
        }
    }

    /// Read size: small enough to stay in L2 while it is hashed.
    static let readSize = 1 << 20
    static let unitSize = 4 << 20

    public static func hash(_ files: [SiteFile], options: Options, progress: HashProgress? = nil) throws(StorageError) -> [HashedFile] {
        let job = Job(files: files, options: options, progress: progress)
        let threads = max(1, min(options.threads, job.units.count))
        if threads == 1 {
            job.work()
        } else {
            DispatchQueue.concurrentPerform(iterations: threads) { _ in job.work() }
        }
        if let error = job.firstError.withLock({ $0 }) { throw error }
        return job.results()
    }

    private struct Unit {
        var file: Int
        var offset: Int64
        var length: Int64
    }

    /// Shared state of one hashing run. Each unit writes a disjoint range of the
    /// preallocated output buffers, so workers need no locking beyond the unit counter.
    private final class Job: @unchecked Sendable {
        let files: [SiteFile]
        let options: Options
        let progress: HashProgress?
        let units: [Unit]
        let leaves: [UnsafeMutableBufferPointer<SHA256Digest>]
        let v1: [UnsafeMutableBufferPointer<SHA1Digest>]
        let next = Atomic<Int>(0)
        let firstError = Mutex<StorageError?>(nil)
        let failed = Atomic<Bool>(false)

        init(files: [SiteFile], options: Options, progress: HashProgress?) {
            self.files = files
            self.options = options
            self.progress = progress
            let pl = Int64(options.pieceLength)
            let unit = max(pl, Int64(ContentHasher.unitSize))
            var units: [Unit] = []
            var leaves: [UnsafeMutableBufferPointer<SHA256Digest>] = []
            var v1: [UnsafeMutableBufferPointer<SHA1Digest>] = []
            for (i, f) in files.enumerated() {
                let blocks = Int((f.size + Int64(blockSize) - 1) / Int64(blockSize))
                leaves.append(.allocate(capacity: blocks))
                let pieces = options.hybrid ? Int((f.size + pl - 1) / pl) : 0
                v1.append(.allocate(capacity: pieces))
                var off: Int64 = 0
                while off < f.size {
                    units.append(Unit(file: i, offset: off, length: min(unit, f.size - off)))
                    off += unit
                }
            }
            // Multi-unit files first, largest first, so a big file is not left for one core at
            // the end; small files keep listing order, which keeps each directory's files together.
            let big = units.filter { files[$0.file].size > unit }.sorted { files[$0.file].size > files[$1.file].size }
            self.units = big + units.filter { files[$0.file].size <= unit }
            self.leaves = leaves
            self.v1 = v1
        }

        deinit {
            for b in leaves { b.deallocate() }
            for b in v1 { b.deallocate() }
        }

        func work() {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: ContentHasher.readSize, alignment: 4096)
            defer { buffer.deallocate() }
            let sha256 = SHA256Hasher()
            let sha1 = SHA1Hasher()
            while !failed.load(ordering: .relaxed) {
                let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard i < units.count else { return }
                do {
                    try hashUnit(units[i], buffer: buffer, sha256: sha256, sha1: sha1)
                } catch {
                    firstError.withLock { if $0 == nil { $0 = error } }
                    failed.store(true, ordering: .relaxed)
                }
            }
        }

        private func hashUnit(_ u: Unit, buffer: UnsafeMutableRawBufferPointer, sha256: SHA256Hasher, sha1: SHA1Hasher) throws(StorageError) {
            let path = files.withUnsafeBufferPointer { $0[u.file].absolutePath }
            // Listed as regular, but it may have been swapped for a FIFO since.
            guard let (fd, _) = try openRegularFile(path, O_RDONLY) else { throw .unreadable(path, reason: errnoText(ENOENT)) }
            let size = files.withUnsafeBufferPointer { $0[u.file].size }
            defer { close(fd) }
            #if os(Linux)
            if u.length >= Int64(ContentHasher.unitSize) {
                _ = posix_fadvise(fd, off_t(u.offset), off_t(u.length), POSIX_FADV_SEQUENTIAL)
            }
            #endif

            let pl = Int64(options.pieceLength)
            var pos = u.offset
            let end = u.offset + u.length
            var leafIndex = Int(u.offset / Int64(blockSize))
            while pos < end {
                let want = Int(min(Int64(buffer.count), end - pos))
                var got = 0
                while got < want {
                    let n = pread(fd, buffer.baseAddress! + got, want - got, off_t(pos) + off_t(got))
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw .unreadable(files[u.file].absolutePath, reason: errnoText(errno))
                    }
                    if n == 0 { throw .changedWhileHashing(files[u.file].absolutePath) }  // shorter than listed
                    got += n
                }
                var b = 0
                while b < want {
                    let n = min(blockSize, want - b)
                    let block = UnsafeRawBufferPointer(rebasing: buffer[b..<(b + n)])
                    leaves[u.file][leafIndex] = sha256.hash(block)
                    if options.hybrid { sha1.update(block) }
                    leafIndex += 1
                    b += n
                    let absolute = pos + Int64(b)
                    if options.hybrid && (absolute % pl == 0 || absolute == size) {
                        if absolute == size && absolute % pl != 0 && !options.singleFile {
                            ContentHasher.feedZeros(Int(pl - absolute % pl), into: sha1)
                        }
                        v1[u.file][Int((absolute - 1) / pl)] = sha1.finish()
                    }
                }
                progress?.add(want)
                pos += Int64(want)
            }
            try checkUnchanged(fd, u.file)
        }

        /// The file must still be what the listing saw: same size and, when known, same mtime.
        /// Checked once, after the unit is read: a write before or during the read changes
        /// the mtime seen here, and a shrink shows up as a short read.
        private func checkUnchanged(_ fd: Int32, _ index: Int) throws(StorageError) {
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw .unreadable(files[index].absolutePath, reason: errnoText(errno)) }
            let (size, modified) = files.withUnsafeBufferPointer { ($0[index].size, $0[index].modified) }
            guard Int64(st.st_size) == size else { throw .changedWhileHashing(files[index].absolutePath) }
            if let m = modified, FileTime(st) != m { throw .changedWhileHashing(files[index].absolutePath) }
        }

        func results() -> [HashedFile] {
            files.indices.map { i in
                let f = files[i]
                let tree = f.size > 0 ? MerkleTree(leaves: Array(leaves[i])) : nil
                return HashedFile(path: f.path, length: f.size, tree: tree, v1PieceHashes: Array(v1[i]))
            }
        }
    }

    nonisolated(unsafe) private static let zeros = UnsafeRawBufferPointer(UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16).initializeMemory(as: UInt8.self, repeating: 0))

    static func feedZeros(_ count: Int, into sha1: SHA1Hasher) {
        var left = count
        while left > 0 {
            let n = min(left, zeros.count)
            sha1.update(UnsafeRawBufferPointer(rebasing: zeros[0..<n]))
            left -= n
        }
    }
}
