import Hashing
import Merkle
import Metainfo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What the last check of a torrent's data found, so the next start can skip hashing files
/// whose size and mtime did not change. Binary, bounded and checksummed: a damaged or
/// foreign record is ignored (everything is re-checked), never trusted.
///
/// Layout: "WSRESUM1", info hash (32 bytes; v1 hashes zero-padded), u32 file count, per
/// file { i64 size, i64 mtime s, i64 mtime ns, u8 ok, u32 leaf count, leaves }, u32 bitfield
/// length, bitfield (v1 torrents), then SHA-256 of everything before it.
struct ResumeRecord {
    struct File {
        var size: Int64
        var time: FileTime
        var ok: Bool
        var leaves: [SHA256Digest]?
    }

    static let magic = Array("WSRESUM1".utf8)
    static let maxSize = 512 << 20

    var key: [UInt8]
    var files: [File]
    var pieces: PieceSet?

    static func key(_ m: Metainfo) -> [UInt8] {
        m.v2InfoHash?.bytes ?? (m.v1InfoHash!.bytes + [UInt8](repeating: 0, count: 12))
    }

    init(metainfo m: Metainfo, directory: String, data: LocalData) {
        key = Self.key(m)
        let bad = Set(data.problems.map(\.path))
        files = m.files.map { f in
            var st = stat()
            let present = stat(directory + "/" + f.pathString, &st) == 0
            let ok = present && !bad.contains(f.pathString) && (f.piecesRoot.map { data.trees[$0] != nil } ?? true)
            let leaves = f.piecesRoot.flatMap { data.trees[$0]?.layers[0] }
            return File(size: present ? Int64(st.st_size) : -1, time: present ? FileTime(st) : FileTime(seconds: 0, nanoseconds: 0),
                        ok: ok, leaves: ok ? leaves : nil)
        }
        pieces = m.version.hasV2 ? nil : data.pieces
    }

    func save(path: String) throws(StorageError) {
        var out = Self.magic + key
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { out += $0 } }
        func i64(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        u32(files.count)
        for f in files {
            i64(f.size); i64(f.time.seconds); i64(f.time.nanoseconds)
            out.append(f.ok ? 1 : 0)
            let leaves = f.leaves ?? []
            u32(leaves.count)
            for l in leaves { withUnsafeBytes(of: l) { out += $0 } }
        }
        u32(pieces?.bytes.count ?? 0)
        out += pieces?.bytes ?? []
        out += Digests.sha256(out).bytes
        try AtomicFile.write(out, to: path, overwrite: true)
    }

    static func load(path: String, metainfo m: Metainfo) -> ResumeRecord? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size >= 8 + 32 + 4 + 4 + 32, st.st_size <= maxSize else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        guard bytes.withUnsafeMutableBytes({ read(fd, $0.baseAddress, $0.count) }) == bytes.count else { return nil }
        let body = bytes[..<(bytes.count - 32)]
        guard Digests.sha256(body).bytes == Array(bytes[(bytes.count - 32)...]) else { return nil }
        var r = ByteReader(bytes: Array(body))
        guard r.take(8) == magic, r.take(32) == key(m), let count = r.u32(), count == m.files.count else { return nil }
        var files: [File] = []
        for f in m.files {
            guard let size = r.i64(), let s = r.i64(), let ns = r.i64(), let ok = r.take(1), let n = r.u32() else { return nil }
            let expected = f.length > 0 ? (Int(f.length) + blockSize - 1) / blockSize : 0
            guard n == 0 || n == expected, let raw = r.take(n * 32) else { return nil }
            var leaves: [SHA256Digest] = []
            leaves.reserveCapacity(n)
            for i in 0..<n { leaves.append(SHA256Digest(bytes: raw[(i * 32)..<(i * 32 + 32)])!) }
            files.append(File(size: size, time: FileTime(seconds: s, nanoseconds: ns), ok: ok[0] == 1, leaves: n > 0 ? leaves : nil))
        }
        guard let bl = r.u32(), let bits = r.take(bl), r.atEnd else { return nil }
        var record = ResumeRecord(key: key(m), files: files, pieces: nil)
        if bl > 0 { record.pieces = PieceSet(bitfield: bits, count: m.pieceCount) }
        return record
    }

    private init(key: [UInt8], files: [File], pieces: PieceSet?) {
        self.key = key
        self.files = files
        self.pieces = pieces
    }
}
