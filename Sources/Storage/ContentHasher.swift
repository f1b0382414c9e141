import Locking
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
/// large file keeps every core busy just as many small files do; each unit's part of its
/// file's Merkle tree is hashed by the worker that read it, so only the few nodes above
/// the units are left for the end.
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
        /// Height of the subtree one unit covers: workers hash each unit's Merkle layers up
        /// to it, leaving only the few nodes above for `results()`.
        let unitHeight: Int
        /// Each file's Merkle tree, every layer one after the other (leaves first).
        let trees: [UnsafeMutableBufferPointer<SHA256Digest>]
        let v1: [UnsafeMutableBufferPointer<SHA1Digest>]
        let next = Atomic<Int>(0)
        let firstError = Locked<StorageError?>(nil)
        let failed = Atomic<Bool>(false)

        init(files: [SiteFile], options: Options, progress: HashProgress?) {
            self.files = files
            self.options = options
            self.progress = progress
            let pl = Int64(options.pieceLength)
            let unit = max(pl, Int64(ContentHasher.unitSize))
            var units: [Unit] = []
            var trees: [UnsafeMutableBufferPointer<SHA256Digest>] = []
            var v1: [UnsafeMutableBufferPointer<SHA1Digest>] = []
            for (i, f) in files.enumerated() {
                let blocks = Job.leafCount(size: f.size)
                trees.append(.allocate(capacity: Job.layerOffset(leafCount: blocks, height: Job.topHeight(leafCount: blocks) + 1)))
                let pieces = options.hybrid ? Int((f.size + pl - 1) / pl) : 0
                v1.append(.allocate(capacity: pieces))
                var off: Int64 = 0
                while off < f.size {
                    units.append(Unit(file: i, offset: off, length: min(unit, f.size - off)))
                    off += unit
                }
            }
            // Units of 1 MiB and more go first, longest first, so that what is left for the end
            // is small enough to share out evenly between cores; small files keep listing
            // order, which keeps each directory's files together.
            let large = Int64(ContentHasher.readSize)
            let big = units.filter { $0.length >= large }.sorted { ($0.length, files[$0.file].size) > ($1.length, files[$1.file].size) }
            self.units = big + units.filter { $0.length < large }
            self.trees = trees
            self.unitHeight = MerkleTree.log2(Int(unit) / blockSize)
            self.v1 = v1
        }

        deinit {
            for b in trees { b.deallocate() }
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
                    try hashUnit(units[i], buffer: buffer, sha256: sha256, sha1: sha1, map: true)
                } catch {
                    firstError.withLock { if $0 == nil { $0 = error } }
                    failed.store(true, ordering: .relaxed)
                }
            }
        }

        /// Hashes one unit; `map` lets a large unit be hashed from a mapping of the file.
        private func hashUnit(_ u: Unit, buffer: UnsafeMutableRawBufferPointer, sha256: SHA256Hasher, sha1: SHA1Hasher,
                              map: Bool) throws(StorageError) {
            let path = files.withUnsafeBufferPointer { $0[u.file].absolutePath }
            // Listed as regular, but it may have been swapped for a FIFO, a device or a
            // directory since: O_NONBLOCK keeps open and read from blocking on those, reads
            // stop at the listed size, and `checkUnchanged` (or a failed read) names what
            // it is. No fstat before reading a small unit: one per file is enough.
            let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
            guard fd >= 0 else { throw .unreadable(path, reason: errnoText(errno)) }
            let size = files.withUnsafeBufferPointer { $0[u.file].size }
            defer { close(fd) }
            // A unit of a read or more is hashed straight from a mapping of the file, which
            // saves copying it out of the page cache (8% of the CPU of hashing a large file).
            let mapping = map && u.length >= Int64(ContentHasher.readSize) ? FileMapping(fd, offset: u.offset, length: Int(u.length)) : nil
            defer { mapping?.unmap() }

            let pl = Int64(options.pieceLength)
            var pos = u.offset
            let end = u.offset + u.length
            var leafIndex = Int(u.offset / Int64(blockSize))
            while pos < end {
                let want = Int(min(Int64(ContentHasher.readSize), end - pos))
                let bytes: UnsafeRawBufferPointer
                if let mapping {
                    let from = Int(pos - u.offset)
                    bytes = UnsafeRawBufferPointer(rebasing: mapping.bytes[from..<(from + want)])
                } else {
                    try read(fd, into: buffer, count: want, at: pos, file: u.file)
                    bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<want])
                }
                // Blocks go to the tree; for hybrid, bytes up to each piece's end go to its SHA-1.
                var b = 0
                while b < want {
                    let n = options.hybrid ? min(want - b, Int(pl - (pos + Int64(b)) % pl)) : want - b
                    let leaves = leafIndex..<(leafIndex + (n + blockSize - 1) / blockSize)
                    guard sha256.hashBlocks(UnsafeRawBufferPointer(rebasing: bytes[b..<(b + n)]), blockSize: blockSize,
                                            into: UnsafeMutableBufferPointer(rebasing: trees[u.file][leaves]),
                                            alsoFeeding: options.hybrid ? sha1 : nil) else {
                        // The mapping could not be read: the file was truncated, or the disk
                        // failed. Reading the unit again says which (a short read or the
                        // error), or hashes it if the fault has passed.
                        progress?.add(-Int(pos - u.offset))
                        return try hashUnit(u, buffer: buffer, sha256: sha256, sha1: sha1, map: false)
                    }
                    leafIndex = leaves.upperBound
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
            Job.hashLayers(trees[u.file], leafCount: Job.leafCount(size: size), from: 0,
                           nodes: Int(u.offset / Int64(blockSize))..<leafIndex, upTo: unitHeight, hasher: sha256)
        }

        /// Reads exactly `count` bytes at `offset` into `buffer`.
        private func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, count: Int, at offset: Int64, file: Int) throws(StorageError) {
            var got = 0
            while got < count {
                let n = pread(fd, buffer.baseAddress! + got, count - got, off_t(offset) + off_t(got))
                if n < 0 {
                    let e = errno
                    if e == EINTR { continue }
                    try checkRegular(fd, file)
                    throw .unreadable(files[file].absolutePath, reason: errnoText(e))
                }
                if n == 0 { throw .changedWhileHashing(files[file].absolutePath) }  // shorter than listed
                got += n
            }
        }

        /// Hashes the Merkle layers above `nodes` of layer `from` (a range starting at a
        /// multiple of 2^(`top` - `from`)) up to height `top` or the root, whichever is lower.
        static func hashLayers(_ tree: UnsafeMutableBufferPointer<SHA256Digest>, leafCount: Int, from: Int, nodes: Range<Int>,
                               upTo top: Int, hasher: SHA256Hasher) {
            var lo = nodes.lowerBound, hi = nodes.upperBound
            var below = layerOffset(leafCount: leafCount, height: from)  // where layer h starts in `tree`
            var h = from
            while h < top, MerkleTree.nodeCount(leafCount: leafCount, height: h) > 1 {
                let above = below + MerkleTree.nodeCount(leafCount: leafCount, height: h)
                MerkleTree.hashParents(of: UnsafeBufferPointer(rebasing: tree[(below + lo)..<(below + hi)]),
                                       into: UnsafeMutableBufferPointer(rebasing: tree[(above + lo / 2)..<(above + (hi + 1) / 2)]),
                                       height: h, hasher: hasher)
                lo /= 2
                hi = (hi + 1) / 2
                below = above
                h += 1
            }
        }

        static func leafCount(size: Int64) -> Int { Int((size + Int64(blockSize) - 1) / Int64(blockSize)) }

        /// Height of the root of a tree over `leafCount` leaves.
        static func topHeight(leafCount: Int) -> Int { MerkleTree.log2(MerkleTree.nextPowerOfTwo(max(leafCount, 1))) }

        /// Where layer `height` starts in a file's flat tree buffer.
        static func layerOffset(leafCount: Int, height: Int) -> Int {
            (0..<height).reduce(0) { $0 + MerkleTree.nodeCount(leafCount: leafCount, height: $1) }
        }

        /// The file must still be what the listing saw: same size and, when known, same mtime.
        /// Checked once, after the unit is read: a write before or during the read changes
        /// the mtime seen here, and a shrink shows up as a short read.
        private func checkUnchanged(_ fd: Int32, _ index: Int) throws(StorageError) {
            let st = try checkRegular(fd, index)
            let (size, modified) = files.withUnsafeBufferPointer { ($0[index].size, $0[index].modified) }
            guard Int64(st.st_size) == size else { throw .changedWhileHashing(files[index].absolutePath) }
            if let m = modified, FileTime(st) != m { throw .changedWhileHashing(files[index].absolutePath) }
        }

        @discardableResult
        private func checkRegular(_ fd: Int32, _ index: Int) throws(StorageError) -> stat {
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw .unreadable(files[index].absolutePath, reason: errnoText(errno)) }
            guard st.st_mode & S_IFMT == S_IFREG else { throw .notARegularFile(files[index].absolutePath, kind: StateFile.kind(st.st_mode)) }
            return st
        }

        func results() -> [HashedFile] {
            let hasher = SHA256Hasher()
            return files.indices.map { i in
                let f = files[i]
                guard f.size > 0 else { return HashedFile(path: f.path, length: 0, tree: nil, v1PieceHashes: []) }
                // Workers hashed every unit's subtree; the layers above join those.
                let n = Job.leafCount(size: f.size)
                let top = Job.topHeight(leafCount: n)
                if top > unitHeight {
                    Job.hashLayers(trees[i], leafCount: n, from: unitHeight, nodes: 0..<MerkleTree.nodeCount(leafCount: n, height: unitHeight),
                                   upTo: top, hasher: hasher)
                }
                let layers = (0...top).map { h in
                    let start = Job.layerOffset(leafCount: n, height: h)
                    return Array(trees[i][start..<(start + MerkleTree.nodeCount(leafCount: n, height: h))])
                }
                return HashedFile(path: f.path, length: f.size, tree: MerkleTree(layers: layers), v1PieceHashes: Array(v1[i]))
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

/// A read-only mapping of part of a regular file, to hash it in place with
/// `SHA256Hasher.hashBlocks`, which survives the file being truncated under it.
private struct FileMapping {
    let bytes: UnsafeRawBufferPointer

    /// Nil when `fd` is not a regular file that still reaches `offset + length`, or cannot be
    /// mapped; the caller then reads it.
    init?(_ fd: Int32, offset: Int64, length: Int) {
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, Int64(st.st_size) >= offset + Int64(length),
              let start = mmap(nil, length, PROT_READ, MAP_SHARED, fd, off_t(offset)),
              start != UnsafeMutableRawPointer(bitPattern: -1) else { return nil }
        _ = posix_madvise(start, length, POSIX_MADV_SEQUENTIAL)
        bytes = UnsafeRawBufferPointer(start: start, count: length)
    }

    func unmap() { munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count) }
}
