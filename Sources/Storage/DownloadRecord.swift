import Hashing
import Metainfo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What a download had verified and written when it last saved its state, so a restart
/// (after a crash, SIGKILL or Ctrl-C) keeps those pieces without hashing them again. It
/// vouches for a file's pieces only while the file is exactly as it was when the record
/// was written (size, mtime, ctime, inode, device: any later write changes ctime);
/// everything else on disk is hashed again before it counts. Damaged or foreign records
/// are ignored.
///
/// Layout: "WSFETCH2", info hash (32 bytes; v1 hashes zero-padded), u32 directory length,
/// directory, u32 file count, per file { u8 present, identity (56 bytes,
/// `RecordWriter.generation`) }, u32 bitfield length, bitfield, then SHA-256 of everything
/// before. A "WSFETCH1" record (no device) is still read, but vouches for no file.
public struct DownloadRecord: Sendable {
    static let magic = Array("WSFETCH2".utf8)
    static let magicV1 = Array("WSFETCH1".utf8)
    static let maxSize = 64 << 20

    public var pieces: PieceSet
    var directory: String
    var files: [FileGeneration?]

    /// The record for `pieces` of `metainfo` in `directory` as the files are now. Call it
    /// only after the data of those pieces is written and synced.
    public init(metainfo m: Metainfo, directory: String, pieces: PieceSet) {
        self.pieces = pieces
        self.directory = directory
        files = m.files.map { f in
            var st = stat()
            return lstat(directory + "/" + f.pathString, &st) == 0 ? FileGeneration(st) : nil
        }
    }

    public func save(metainfo m: Metainfo, path: String) throws(StorageError) {
        var w = RecordWriter(out: Self.magic + ResumeRecord.key(m))
        w.u32(directory.utf8.count)
        w.out += Array(directory.utf8)
        w.u32(files.count)
        for g in files {
            w.out.append(g == nil ? 0 : 1)
            w.generation(g ?? FileGeneration(size: 0, modified: .zero, changed: .zero, inode: 0, device: 0))
        }
        w.u32(pieces.bytes.count)
        w.out += pieces.bytes
        w.out += Digests.sha256(w.out).bytes
        try AtomicFile.write(w.out, to: path, overwrite: true)
    }

    /// The pieces the record at `path` still vouches for in `directory`: those whose files
    /// are all unchanged since it was written. nil when there is no usable record.
    /// A record that cannot be read (a FIFO, too large) counts as none; `checkedVouched`
    /// says why.
    public static func vouched(path: String, metainfo m: Metainfo, directory: String) -> PieceSet? {
        (try? checkedVouched(path: path, metainfo: m, directory: directory)) ?? nil
    }

    /// As `vouched`, but throws when what is at `path` is not a readable regular file.
    public static func checkedVouched(path: String, metainfo m: Metainfo, directory: String) throws(StorageError) -> PieceSet? {
        guard let record = try load(path: path, metainfo: m), record.directory == directory else { return nil }
        var unchanged: [Bool] = []
        for (i, f) in m.files.enumerated() {
            var st = stat()
            let now = lstat(directory + "/" + f.pathString, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG ? FileGeneration(st) : nil
            unchanged.append(now != nil && now == record.files[i])
        }
        var out = PieceSet(count: m.pieceCount)
        let pl = Int64(m.pieceLength)
        for p in 0..<m.pieceCount where record.pieces.contains(p) {
            let start = Int64(p) * pl
            let end = start + pl
            // Every non-empty file under the piece must be unchanged (in v2 there is one).
            let under = m.files.indices.filter { i in
                let f = m.files[i]
                return f.length > 0 && !f.isSymlink && f.offset < end && f.offset + f.length > start
            }
            if under.allSatisfy({ unchanged[$0] }) { out.insert(p) }
        }
        return out
    }

    static func load(path: String, metainfo m: Metainfo) throws(StorageError) -> DownloadRecord? {
        try StateFile.read(path, maxSize: maxSize).flatMap { parse($0, metainfo: m) }
    }

    static func parse(_ bytes: [UInt8], metainfo m: Metainfo) -> DownloadRecord? {
        guard bytes.count >= 8 + 32 + 12 + 32 else { return nil }
        let body = bytes[..<(bytes.count - 32)]
        guard Digests.sha256(body).bytes == Array(bytes[(bytes.count - 32)...]) else { return nil }
        var r = ByteReader(bytes: Array(body))
        guard let magic = r.take(8), magic == Self.magic || magic == magicV1 else { return nil }
        let old = magic == magicV1
        guard r.take(32) == ResumeRecord.key(m), let dl = r.u32(), let dir = r.take(dl),
              let count = r.u32(), count == m.files.count else { return nil }
        var files: [FileGeneration?] = []
        for _ in 0..<count {
            if old {
                // No device: the file cannot be told apart from one on another disk.
                guard r.take(1 + 6 * 8) != nil else { return nil }
                files.append(nil)
                continue
            }
            guard let present = r.take(1), let g = r.generation() else { return nil }
            files.append(present[0] == 1 ? g : nil)
        }
        guard let bl = r.u32(), let bits = r.take(bl), r.atEnd, let pieces = PieceSet(bitfield: bits, count: m.pieceCount) else { return nil }
        return DownloadRecord(pieces: pieces, directory: String(decoding: dir, as: UTF8.self), files: files)
    }

    private init(pieces: PieceSet, directory: String, files: [FileGeneration?]) {
        self.pieces = pieces
        self.directory = directory
        self.files = files
    }
}
