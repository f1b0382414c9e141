import CPosix
import Locking
import Metainfo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads byte ranges of a torrent's piece address space from its files on disk. Gaps
/// (v2 alignment, BEP 47 pad files, the tail of the last piece) read as zeros, so any
/// range inside a piece can be served to clients that do not understand padding.
///
/// Thread-safe: reads use `pread` on descriptors opened once and kept in a small cache.
public final class PieceReader: @unchecked Sendable {
    struct Segment {
        var offset: Int64
        var length: Int64
        var file: Int?  // nil: zeros
    }

    private let directory: String
    private let paths: [String]
    /// metainfo.files index → index into `paths` (nil for symlinks).
    private let torrentFileIndex: [Int?]
    private let segments: [Segment]
    public let totalLength: Int64
    private let descriptors = Locked<[Int: Int32]>([:])
    private let maxOpen: Int
    /// Downloads write through the same reader that serves them (see `write`).
    private let writable: Bool

    public init(metainfo m: Metainfo, directory: String, maxOpenFiles: Int = 128, writable: Bool = false) {
        self.directory = directory
        self.maxOpen = maxOpenFiles
        self.writable = writable
        var paths: [String] = []
        var torrentFileIndex: [Int?] = []
        var segments: [Segment] = []
        var end: Int64 = 0
        func add(_ offset: Int64, _ length: Int64, _ file: Int?) {
            guard length > 0 else { return }
            if offset > end { segments.append(Segment(offset: end, length: offset - end, file: nil)) }
            segments.append(Segment(offset: offset, length: length, file: file))
            end = offset + length
        }
        if m.version.hasV2 {
            for f in m.files {
                guard !f.isSymlink else { torrentFileIndex.append(nil); continue }
                paths.append(f.pathString)
                torrentFileIndex.append(paths.count - 1)
                add(f.offset, f.length, paths.count - 1)
            }
        } else {
            for e in m.v1Entries {
                if e.isPad { add(e.offset, e.length, nil) } else {
                    paths.append(e.path.joined(separator: "/"))
                    torrentFileIndex.append(paths.count - 1)  // v1 files are the non-pad entries, in order
                    add(e.offset, e.length, paths.count - 1)
                }
            }
        }
        let total = Int64(m.pieceCount) * Int64(m.pieceLength)
        if total > end { segments.append(Segment(offset: end, length: total - end, file: nil)) }
        self.paths = paths
        self.torrentFileIndex = torrentFileIndex
        self.segments = segments
        self.totalLength = max(total, end)
    }

    deinit { descriptors.withLock { for fd in $0.values { close(fd) } } }

    /// Fills `into` with the bytes at `offset` of the piece address space.
    public func read(offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) {
        precondition(offset >= 0 && offset + Int64(buffer.count) <= totalLength)
        _ = try fill(offset: offset, into: buffer) { (file, at, dest) throws(StorageError) in
            try readFile(file, at: at, into: dest)
            return true
        }
    }

    /// Like `read`, but only from the page cache: false (nothing to use) when any byte
    /// would have to come from the disk, so an event loop can serve hot data itself and
    /// leave cold reads to a thread pool.
    public func readIfCached(offset: Int64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard offset >= 0, offset + Int64(buffer.count) <= totalLength else { return false }
        return (try? fill(offset: offset, into: buffer) { (file, at, dest) throws(StorageError) in
            let (fd, cached) = try descriptor(file)
            defer { if !cached { close(fd) } }
            var got = 0
            while got < dest.count {
                let r = webseed_pread_cached(fd, dest.baseAddress! + got, dest.count - got, off_t(at) + off_t(got))
                if r <= 0 { return false }
                got += r
            }
            return true
        }) ?? false
    }

    /// Walks the segments under `buffer`: gaps become zeros, file ranges go to `fromFile`
    /// (file, offset in it, destination), which may stop the walk by returning false.
    private func fill(offset: Int64, into buffer: UnsafeMutableRawBufferPointer,
                      _ fromFile: (Int, Int64, UnsafeMutableRawBufferPointer) throws(StorageError) -> Bool) throws(StorageError) -> Bool {
        try walk(offset: offset, count: buffer.count) { (file, at, range) throws(StorageError) in
            let dest = UnsafeMutableRawBufferPointer(rebasing: buffer[range])
            guard let file else {
                dest.initializeMemory(as: UInt8.self, repeating: 0)
                return true
            }
            return try fromFile(file, at, dest)
        }
    }

    /// The segments under `count` bytes at `offset`: (file or nil for a gap, offset in the
    /// file, range of the caller's buffer). Stops early when `body` returns false.
    private func walk(offset: Int64, count: Int, _ body: (Int?, Int64, Range<Int>) throws(StorageError) -> Bool) throws(StorageError) -> Bool {
        var pos = offset
        var done = 0
        var i = segmentIndex(containing: pos)
        while done < count {
            let s = segments[i]
            let n = Int(min(Int64(count - done), s.offset + s.length - pos))
            guard try body(s.file, pos - s.offset, done..<(done + n)) else { return false }
            done += n
            pos += Int64(n)
            i += 1
        }
        return true
    }

    private func segmentIndex(containing offset: Int64) -> Int {
        var lo = 0, hi = segments.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if segments[mid].offset <= offset { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    private func readFile(_ file: Int, at offset: Int64, into dest: UnsafeMutableRawBufferPointer) throws(StorageError) {
        let (fd, cached) = try descriptor(file)
        defer { if !cached { close(fd) } }
        var got = 0
        while got < dest.count {
            let n = pread(fd, dest.baseAddress! + got, dest.count - got, off_t(offset) + off_t(got))
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadable(paths[file], reason: errnoText(errno))
            }
            if n == 0 { throw .changedWhileHashing(paths[file]) }  // the file shrank under us
            got += n
        }
    }

    /// Opens a regular file only: one swapped for a FIFO after it verified must not hang
    /// the reading thread. Failures to open are reported by `failure(reason)`.
    private func open(_ file: Int, _ flags: Int32, failure: (String) -> StorageError) throws(StorageError) -> Int32 {
        let opened: (Int32, stat)?
        do {
            opened = try openRegularFile(directory + "/" + paths[file], flags, mode: 0o644)
        } catch {
            if case .unreadable(_, let reason) = error { throw failure(reason) }
            throw error
        }
        guard let (fd, _) = opened else { throw failure(errnoText(ENOENT)) }
        return fd
    }

    /// Descriptors are cached for the reader's lifetime (never closed while another
    /// thread may be reading through them); past `maxOpen`, files are opened per read.
    private func descriptor(_ file: Int) throws(StorageError) -> (Int32, cached: Bool) {
        try descriptors.withLock { (descriptors) throws(StorageError) -> (Int32, cached: Bool) in
            if let fd = descriptors[file] { return (fd, true) }
            let fd: Int32
            if writable {
                try makeParents(of: paths[file])
                // O_NOFOLLOW: a symlink planted in the output is never written through.
                fd = try open(file, O_RDWR | O_CREAT | O_NOFOLLOW) { .writeFailed(paths[file], reason: $0) }
            } else {
                fd = try open(file, O_RDONLY) { .unreadable(paths[file], reason: $0) }
            }
            guard descriptors.count < maxOpen else { return (fd, false) }
            descriptors[file] = fd
            return (fd, true)
        }
    }
}

extension PieceReader {
    /// Writes `bytes` at `offset` of the piece address space into the files under it
    /// (creating them and their folders); gaps (padding) are skipped. Only for a reader
    /// made `writable`.
    public func write(offset: Int64, _ bytes: UnsafeRawBufferPointer) throws(StorageError) {
        precondition(writable && offset >= 0 && offset + Int64(bytes.count) <= totalLength)
        _ = try walk(offset: offset, count: bytes.count) { (file, at, range) throws(StorageError) in
            guard let file else { return true }
            let (fd, cached) = try descriptor(file)
            defer { if !cached { close(fd) } }
            var put = 0
            while put < range.count {
                let n = pwrite(fd, bytes.baseAddress! + range.lowerBound + put, range.count - put, off_t(at) + off_t(put))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw .writeFailed(paths[file], reason: errnoText(errno))
                }
                put += n
            }
            return true
        }
    }

    /// Creates (empty) every file of the torrent that does not exist yet, with its folders.
    public func createFiles() throws(StorageError) {
        precondition(writable)
        for i in paths.indices {
            let (fd, cached) = try descriptor(i)
            if !cached { close(fd) }
        }
    }

    /// Flushes written data to the disk (before a resume record vouches for it).
    public func sync() throws(StorageError) {
        let open = descriptors.withLock { $0 }
        for (file, fd) in open where fdatasync(fd) != 0 {
            throw .writeFailed(paths[file], reason: errnoText(errno))
        }
    }

    /// Makes the folders above `path` inside the directory, refusing to pass through
    /// anything that is not a real folder (a symlink could lead outside).
    private func makeParents(of path: String) throws(StorageError) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        var at = directory
        for part in parts {
            at += "/" + part
            var st = stat()
            if lstat(at, &st) == 0 {
                guard (st.st_mode & S_IFMT) == S_IFDIR else { throw .writeFailed(path, reason: "\(at) is in the way and is not a folder") }
                continue
            }
            if mkdir(at, 0o755) != 0 && errno != EEXIST { throw .writeFailed(path, reason: errnoText(errno)) }
        }
    }

    /// What file `i` (index into `metainfo.files`) is on disk now.
    public func generation(ofTorrentFile i: Int) -> FileGeneration? {
        guard i < torrentFileIndex.count, let index = torrentFileIndex[i], let (fd, cached) = try? descriptor(index) else { return nil }
        defer { if !cached { close(fd) } }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        return FileGeneration(st)
    }
}

extension PieceReader {
    /// What the path of file `i` names now, following symlinks as opening it does. A file
    /// renamed over or removed since its descriptor was opened is still read through that
    /// descriptor; this tells whether the path still names it.
    public func generation(atPathOfTorrentFile i: Int) -> FileGeneration? {
        guard i < torrentFileIndex.count, let index = torrentFileIndex[i] else { return nil }
        var st = stat()
        guard stat(directory + "/" + paths[index], &st) == 0 else { return nil }
        return FileGeneration(st)
    }
}

/// A file's identity for "is this still the file that verified?": size, mtime, ctime,
/// inode and device. Any write changes ctime, which no unprivileged process can set back
/// (tools that pin mtimes restore size and mtime, never ctime).
public struct FileGeneration: Sendable, Equatable {
    public var size: Int64
    public var modified: FileTime
    public var changed: FileTime
    public var inode: UInt64
    public var device: UInt64

    init(size: Int64, modified: FileTime, changed: FileTime, inode: UInt64, device: UInt64) {
        self.size = size
        self.modified = modified
        self.changed = changed
        self.inode = inode
        self.device = device
    }

    init(_ st: stat) {
        size = Int64(st.st_size)
        modified = FileTime(st)
        changed = FileTime(seconds: Int64(st.st_ctim.tv_sec), nanoseconds: Int64(st.st_ctim.tv_nsec))
        inode = UInt64(st.st_ino)
        device = UInt64(st.st_dev)
    }
}
