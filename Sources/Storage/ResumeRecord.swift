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
/// that are still exactly the file that verified: same size, mtime, ctime, inode and device
/// (a file edited with its size and mtime put back has a new ctime). Binary, bounded and
/// checksummed: a damaged or foreign record is ignored (everything is re-checked), never
/// trusted.
///
/// Layout: "WSRESUM2", info hash (32 bytes; v1 hashes zero-padded), u32 file count, per
/// file { u8 ok, identity (56 bytes, `RecordWriter.generation`), u32 leaf count, leaves },
/// u32 bitfield length, bitfield (v1 torrents), then SHA-256 of everything before it.
/// A "WSRESUM1" record (size and mtime only) is still read, but vouches for no file.
struct ResumeRecord {
    struct File {
        /// What the file was when it verified; nil when it did not (or the record is too
        /// old to say).
        var identity: FileGeneration?
        var leaves: [SHA256Digest]?
    }

    static let magic = Array("WSRESUM2".utf8)
    static let magicV1 = Array("WSRESUM1".utf8)
    static let maxSize = 512 << 20

    var key: [UInt8]
    var files: [File]
    var pieces: PieceSet?

    static func key(_ m: Metainfo) -> [UInt8] {
        m.v2InfoHash?.bytes ?? (m.v1InfoHash!.bytes + [UInt8](repeating: 0, count: 12))
    }

    /// The identities are those seen when each file verified (`data.generations`), not
    /// what is on disk now: a file edited since then must not be recorded as good.
    init(metainfo m: Metainfo, data: LocalData) {
        key = Self.key(m)
        let bad = Set(data.problems.map(\.path))
        files = m.files.enumerated().map { i, f in
            let identity = bad.contains(f.pathString) ? nil : data.generations[i]
            let leaves = f.piecesRoot.flatMap { data.trees[$0]?.layers[0] }
            return File(identity: identity, leaves: identity == nil ? nil : leaves)
        }
        pieces = m.version.hasV2 ? nil : data.pieces
    }

    func save(path: String) throws(StorageError) {
        var w = RecordWriter(out: Self.magic + key)
        w.u32(files.count)
        for f in files {
            w.out.append(f.identity == nil ? 0 : 1)
            w.generation(f.identity ?? FileGeneration(size: -1, modified: .zero, changed: .zero, inode: 0, device: 0))
            let leaves = f.leaves ?? []
            w.u32(leaves.count)
            for l in leaves { withUnsafeBytes(of: l) { w.out += $0 } }
        }
        w.u32(pieces?.bytes.count ?? 0)
        w.out += pieces?.bytes ?? []
        w.out += Digests.sha256(w.out).bytes
        try AtomicFile.write(w.out, to: path, overwrite: true)
    }

    /// nil when there is no record or it is damaged or for another torrent; throws when
    /// what is at `path` is not a file that can be read (a FIFO, a directory, too large).
    static func load(path: String, metainfo m: Metainfo) throws(StorageError) -> ResumeRecord? {
        try StateFile.read(path, maxSize: maxSize).flatMap { parse($0, metainfo: m) }
    }

    static func parse(_ bytes: [UInt8], metainfo m: Metainfo) -> ResumeRecord? {
        guard bytes.count >= 8 + 32 + 4 + 4 + 32 else { return nil }
        let body = bytes[..<(bytes.count - 32)]
        guard Digests.sha256(body).bytes == Array(bytes[(bytes.count - 32)...]) else { return nil }
        var r = ByteReader(bytes: Array(body))
        guard let magic = r.take(8), magic == Self.magic || magic == magicV1 else { return nil }
        let old = magic == magicV1
        guard r.take(32) == key(m), let count = r.u32(), count == m.files.count else { return nil }
        var files: [File] = []
        for f in m.files {
            var identity: FileGeneration?
            if old {
                guard r.take(8 * 3 + 1) != nil else { return nil }  // size, mtime, ok: not enough to trust
            } else {
                guard let ok = r.take(1), let g = r.generation() else { return nil }
                identity = ok[0] == 1 ? g : nil
            }
            guard let n = r.u32() else { return nil }
            let expected = f.length > 0 ? (Int(f.length) + blockSize - 1) / blockSize : 0
            guard n == 0 || n == expected, let raw = r.take(n * 32) else { return nil }
            var leaves: [SHA256Digest] = []
            leaves.reserveCapacity(n)
            for i in 0..<n { leaves.append(SHA256Digest(bytes: raw[(i * 32)..<(i * 32 + 32)])!) }
            files.append(File(identity: identity, leaves: n > 0 ? leaves : nil))
        }
        guard let bl = r.u32(), let bits = r.take(bl), r.atEnd else { return nil }
        var record = ResumeRecord(key: key(m), files: files, pieces: nil)
        // An old record cannot say which files are unchanged, so its pieces count for nothing.
        if bl > 0 && !old { record.pieces = PieceSet(bitfield: bits, count: m.pieceCount) }
        return record
    }

    private init(key: [UInt8], files: [File], pieces: PieceSet?) {
        self.key = key
        self.files = files
        self.pieces = pieces
    }
}

extension FileTime {
    static let zero = FileTime(seconds: 0, nanoseconds: 0)
}
