import Hashing
import Merkle
import Metainfo
import NIOCore
import Storage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A fetch's work on disk, run on the disk threads: checking the output directory and
/// what it already holds, verifying and writing pieces, and finishing files.
enum FetchDisk {
    struct Start: Sendable {
        var pieces: PieceSet
        var fromRecord: Int
        var rechecked: Int
        var generations: [Int: FileGeneration]
        var leaves: [Int: [(index: Int, leaves: [SHA256Digest])]]
        /// Why the download record there was not used (a FIFO or a directory in its place, too large).
        var recordProblem: StorageError? = nil
    }

    /// Makes sure `directory` holds nothing but this torrent's files (an earlier download
    /// of it), creates the missing files, and finds which pieces are already there: those
    /// the resume record vouches for, and those that hash correctly.
    static func start(check: PieceCheck, reader: PieceReader, directory: String, recordPath: String, recheck: Bool) throws(FetchError) -> Start {
        let m = check.metainfo
        try checkDirectory(directory, metainfo: m)
        do { try reader.createFiles() } catch { throw .storage(error) }
        var vouched: PieceSet?
        var recordProblem: StorageError?
        if !recheck {
            // A record that cannot be read costs only hashing what is on disk, but the user
            // should hear why (something else sits where it belongs).
            do { vouched = try DownloadRecord.checkedVouched(path: recordPath, metainfo: m, directory: directory) } catch { recordProblem = error }
        }
        var result = Start(pieces: vouched ?? PieceSet(count: m.pieceCount), fromRecord: vouched?.cardinality ?? 0, rechecked: 0,
                           generations: [:], leaves: [:], recordProblem: recordProblem)
        var sizes: [Int: Int64] = [:]
        for (i, f) in m.files.enumerated() where f.length > 0 && !f.isSymlink {
            var st = stat()
            sizes[i] = lstat(directory + "/" + f.pathString, &st) == 0 ? Int64(st.st_size) : 0
        }
        var buffer = [UInt8]()
        for p in 0..<m.pieceCount where !result.pieces.contains(p) {
            let (offset, length) = check.span(ofPiece: p)
            // Only pieces whose bytes are all on disk can be there; the rest were never written.
            let covered = m.files.indices.allSatisfy { i in
                let f = m.files[i]
                guard f.length > 0, !f.isSymlink, f.offset < offset + Int64(length), f.offset + f.length > offset else { return true }
                return (sizes[i] ?? 0) >= min(f.length, offset + Int64(length) - f.offset)
            }
            guard covered else { continue }
            buffer = [UInt8](repeating: 0, count: length)
            let ok: Bool = buffer.withUnsafeMutableBytes { raw in (try? reader.read(offset: offset, into: raw)) != nil }
            guard ok else { continue }
            if case .verified(let leaves) = buffer.withUnsafeBytes({ check.check(piece: p, data: $0) }) {
                result.pieces.insert(p)
                result.rechecked += 1
                if let f = check.file(ofPiece: p) {
                    let index = Int((offset - m.files[f].offset) / Int64(blockSize))
                    result.leaves[f, default: []].append((index, leaves))
                }
            }
        }
        for (i, f) in m.files.enumerated() where f.length > 0 && !f.isSymlink {
            result.generations[i] = reader.generation(ofTorrentFile: i)
        }
        return result
    }

    /// `directory` may be missing, empty, or hold only files and folders of this torrent.
    static func checkDirectory(_ directory: String, metainfo m: Metainfo) throws(FetchError) {
        var st = stat()
        if lstat(directory, &st) != 0 {
            guard errno == ENOENT else { throw .storage(.unreadable(directory, reason: errnoText(errno))) }
            var at = directory.hasPrefix("/") ? "" : "."
            for part in directory.split(separator: "/") {
                at += "/" + part
                if mkdir(at, 0o755) != 0 && errno != EEXIST { throw .storage(.writeFailed(directory, reason: errnoText(errno))) }
            }
            return
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw .directoryInUse(directory, entry: nil) }
        var files = Set<String>()
        var folders = Set<String>()
        for f in m.files where !f.isSymlink {
            files.insert(f.pathString)
            var prefix = ""
            for part in f.path.dropLast() {
                prefix += (prefix.isEmpty ? "" : "/") + part
                folders.insert(prefix)
            }
        }
        var pending = [""]
        var seen = 0
        while let rel = pending.popLast() {
            guard let dir = opendir(rel.isEmpty ? directory : directory + "/" + rel) else {
                throw .storage(.unreadable(rel.isEmpty ? directory : rel, reason: errnoText(errno)))
            }
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name == "." || name == ".." { continue }
                seen += 1
                guard seen <= 1_000_000 else { throw .directoryInUse(directory, entry: name) }
                let path = rel.isEmpty ? name : rel + "/" + name
                var est = stat()
                guard lstat(directory + "/" + path, &est) == 0 else { continue }
                switch est.st_mode & S_IFMT {
                case S_IFDIR where folders.contains(path): pending.append(path)
                case S_IFREG where files.contains(path): continue
                default: throw .directoryInUse(directory, entry: path)
                }
            }
        }
    }

    enum Written: Sendable {
        case ok(leaves: [SHA256Digest], generation: FileGeneration?)
        case mismatch(String)
        case writeFailed(StorageError)
    }

    /// Verifies a piece and, if it holds, writes it to its final place.
    static func verifyAndWrite(check: PieceCheck, reader: PieceReader, piece p: Int, data: ByteBuffer) -> Written {
        let outcome = data.withUnsafeReadableBytes { check.check(piece: p, data: $0) }
        guard case .verified(let leaves) = outcome else {
            if case .mismatch(let why) = outcome { return .mismatch(why) }
            return .mismatch("piece \(p) failed verification")
        }
        let offset = check.span(ofPiece: p).offset
        do {
            try data.withUnsafeReadableBytes { raw throws(StorageError) in try reader.write(offset: offset, raw) }
        } catch {
            return .writeFailed(error)
        }
        return .ok(leaves: leaves, generation: check.file(ofPiece: p).flatMap { reader.generation(ofTorrentFile: $0) })
    }

    /// Every piece is in: builds each file's Merkle tree (hashing from disk the leaves this
    /// session did not see, for pieces found at start), flushes, and writes the record.
    static func finish(check: PieceCheck, reader: PieceReader, directory: String, leaves: [Int: [SHA256Digest]],
                       known: [Int: Int], recordPath: String) throws(FetchError) -> Finished {
        let m = check.metainfo
        var trees: [(file: Int, tree: MerkleTree)] = []
        if m.version.hasV2 {
            var buffer = [UInt8](repeating: 0, count: blockSize)
            let h = SHA256Hasher()
            for (i, f) in m.files.enumerated() where f.length > 0 && !f.isSymlink {
                let count = Int((f.length + Int64(blockSize) - 1) / Int64(blockSize))
                var layer = leaves[i] ?? []
                if known[i] != count {
                    layer = []
                    layer.reserveCapacity(count)
                    for b in 0..<count {
                        let n = Int(min(Int64(blockSize), f.length - Int64(b) * Int64(blockSize)))
                        let ok: Bool = buffer.withUnsafeMutableBytes { raw in
                            (try? reader.read(offset: f.offset + Int64(b) * Int64(blockSize), into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<n]))) != nil
                        }
                        guard ok else { throw .storage(.unreadable(f.pathString, reason: "it changed during the download")) }
                        layer.append(buffer.withUnsafeBytes { h.hash(UnsafeRawBufferPointer(rebasing: $0[0..<n])) })
                    }
                }
                let tree = MerkleTree(leaves: layer)
                guard tree.root == f.piecesRoot else { throw .storage(.unreadable(f.pathString, reason: "it changed during the download")) }
                trees.append((i, tree))
            }
        }
        try RecordWriter.shared.save(metainfo: m, reader: reader, directory: directory, pieces: PieceSet(count: m.pieceCount, full: true),
                                     path: recordPath, final: true)
        var generations: [Int: FileGeneration] = [:]
        for (i, f) in m.files.enumerated() where f.length > 0 && !f.isSymlink { generations[i] = reader.generation(ofTorrentFile: i) }
        return Finished(trees: trees, generations: generations)
    }

    struct Finished: Sendable {
        var trees: [(file: Int, tree: MerkleTree)]
        var generations: [Int: FileGeneration]
    }

    /// Flushes what was written, then records the pieces written before the flush.
    static func saveRecord(metainfo m: Metainfo, reader: PieceReader, directory: String, pieces: PieceSet, path: String) throws(FetchError) {
        try RecordWriter.shared.save(metainfo: m, reader: reader, directory: directory, pieces: pieces, path: path, final: false)
    }
}

/// Writes download records one at a time per path, and never replaces the final record of
/// a completed download with an older one (a periodic save may still be running when the
/// download completes).
final class RecordWriter: Sendable {
    static let shared = RecordWriter()
    private let state = Mutex<Set<String>>([])
    private let writing = Mutex(())

    func save(metainfo m: Metainfo, reader: PieceReader, directory: String, pieces: PieceSet, path: String, final: Bool) throws(FetchError) {
        let result: Result<Void, FetchError> = writing.withLock { _ in
            if state.withLock({ $0.contains(path) }) { return .success(()) }
            do throws(StorageError) {
                try reader.sync()
                try DownloadRecord(metainfo: m, directory: directory, pieces: pieces).save(metainfo: m, path: path)
            } catch {
                return .failure(.storage(error))
            }
            if final { state.withLock { _ = $0.insert(path) } }
            return .success(())
        }
        try result.get()
    }
}

/// Why a fetch stopped for good.
public enum FetchError: Error, Sendable, CustomStringConvertible {
    case storage(StorageError)
    case directoryInUse(String, entry: String?)
    case invalidMetadata(String)
    case noPeers(String)
    case noMetadata(seconds: Int, peers: Int)
    case stalled(seconds: Int, peers: Int)

    public var description: String {
        switch self {
        case .storage(let e): e.description
        case .directoryInUse(let d, let entry?):
            "\(d) exists and holds '\(entry)', which is not part of this torrent; choose another -o or remove it"
        case .directoryInUse(let d, nil): "\(d) exists and is not a directory; choose another -o"
        case .invalidMetadata(let why): "the torrent's metadata is not valid: \(why)"
        case .noPeers(let why): "no peers: \(why)"
        case .noMetadata(let s, let n): "metadata did not arrive within \(s) s (\(n) peer\(n == 1 ? "" : "s") connected)"
        case .stalled(let s, let n): "stalled: nothing received for \(s) s (\(n) peer\(n == 1 ? "" : "s") connected)"
        }
    }
}
