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
/// was written (size, mtime, ctime, inode: any later write changes ctime); everything
/// else on disk is hashed again before it counts. Damaged or foreign records are ignored.
///
/// Layout: "WSFETCH1", info hash (32 bytes; v1 hashes zero-padded), u32 directory length,
/// directory, u32 file count, per file { u8 present, i64 size, i64 mtime s, ns, i64 ctime
/// s, ns, u64 inode }, u32 bitfield length, bitfield, then SHA-256 of everything before.
public struct DownloadRecord: Sendable {
    static let magic = Array("WSFETCH1".utf8)
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
        var out = Self.magic + ResumeRecord.key(m)
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { out += $0 } }
        func i64(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        u32(directory.utf8.count)
        out += Array(directory.utf8)
        u32(files.count)
        for g in files {
            out.append(g == nil ? 0 : 1)
            let g = g ?? FileGeneration(size: 0, modified: FileTime(seconds: 0, nanoseconds: 0), changed: FileTime(seconds: 0, nanoseconds: 0), inode: 0)
            i64(g.size); i64(g.modified.seconds); i64(g.modified.nanoseconds)
            i64(g.changed.seconds); i64(g.changed.nanoseconds); i64(Int64(bitPattern: g.inode))
        }
        u32(pieces.bytes.count)
        out += pieces.bytes
        out += Digests.sha256(out).bytes
        try AtomicFile.write(out, to: path, overwrite: true)
    }

    /// The pieces the record at `path` still vouches for in `directory`: those whose files
    /// are all unchanged since it was written. nil when there is no usable record.
    public static func vouched(path: String, metainfo m: Metainfo, directory: String) -> PieceSet? {
        guard let record = load(path: path, metainfo: m), record.directory == directory else { return nil }
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

    static func load(path: String, metainfo m: Metainfo) -> DownloadRecord? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size >= 8 + 32 + 12 + 32, st.st_size <= maxSize else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        guard bytes.withUnsafeMutableBytes({ read(fd, $0.baseAddress, $0.count) }) == bytes.count else { return nil }
        let body = bytes[..<(bytes.count - 32)]
        guard Digests.sha256(body).bytes == Array(bytes[(bytes.count - 32)...]) else { return nil }
        var r = ByteReader(bytes: Array(body))
        guard r.take(8) == magic, r.take(32) == ResumeRecord.key(m), let dl = r.u32(), let dir = r.take(dl),
              let count = r.u32(), count == m.files.count else { return nil }
        var files: [FileGeneration?] = []
        for _ in 0..<count {
            guard let present = r.take(1), let size = r.i64(), let ms = r.i64(), let mns = r.i64(),
                  let cs = r.i64(), let cns = r.i64(), let inode = r.i64() else { return nil }
            files.append(present[0] == 1 ? FileGeneration(size: size, modified: FileTime(seconds: ms, nanoseconds: mns),
                                                          changed: FileTime(seconds: cs, nanoseconds: cns), inode: UInt64(bitPattern: inode)) : nil)
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

/// Bounded little-endian reads from a byte array (records on disk).
struct ByteReader {
    let bytes: [UInt8]
    var pos = 0
    var atEnd: Bool { pos == bytes.count }
    mutating func take(_ n: Int) -> [UInt8]? {
        guard n >= 0, n <= bytes.count - pos else { return nil }
        defer { pos += n }
        return Array(bytes[pos..<(pos + n)])
    }
    mutating func u32() -> Int? { take(4).map { Int(UInt32(littleEndian: $0.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })) } }
    mutating func i64() -> Int64? { take(8).map { Int64(littleEndian: $0.withUnsafeBytes { $0.loadUnaligned(as: Int64.self) }) } }
}
