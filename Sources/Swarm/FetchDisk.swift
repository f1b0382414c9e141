import Locking
import Hashing
import Merkle
import Metainfo
import NIOCore
import Storage

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
        /// Files taken from `FetchOptions.reuse` and verified (see `reuse`).
        var reused = 0
        /// Files on disk whose pieces were not looked at: their piece layer is not known yet.
        var unchecked: [Int] = []
    }

    /// Makes sure `directory` holds nothing but this torrent's files (an earlier download
    /// of it), and finds which pieces are already there: those the resume record vouches
    /// for, and those that hash correctly. Nothing is created here: a file is made when its
    /// first piece is written (`PieceReader.write`), empty files when the download finishes,
    /// so for an empty or new directory this costs nothing per file of the torrent (a
    /// gateway's first byte waits for it).
    static func start(check: PieceCheck, reader: PieceReader, directory: String, recordPath: String, recheck: Bool,
                      reuse sources: [SHA256Digest: String] = [:]) throws(FetchError) -> Start {
        let m = check.metainfo
        var onDisk = try checkDirectory(directory, metainfo: m)
        let reused = try reuse(check: check, directory: directory, from: sources, present: onDisk)
        var vouched: PieceSet?
        var recordProblem: StorageError?
        if !recheck {
            // A record that cannot be read costs only hashing what is on disk, but the user
            // should hear why (something else sits where it belongs).
            do { vouched = try DownloadRecord.checkedVouched(path: recordPath, metainfo: m, directory: directory) } catch { recordProblem = error }
        }
        var result = Start(pieces: vouched ?? PieceSet(count: m.pieceCount), fromRecord: vouched?.cardinality ?? 0, rechecked: 0,
                           generations: [:], leaves: [:], recordProblem: recordProblem, reused: reused.count)
        for (i, r) in reused {
            for (p, leaves) in r {
                if result.pieces.contains(p) { continue }
                result.pieces.insert(p)
                result.rechecked += 1
                let index = Int((check.span(ofPiece: p).offset - m.files[i].offset) / Int64(blockSize))
                result.leaves[i, default: []].append((index, leaves))
            }
            onDisk[m.files[i].pathString] = nil
            result.generations[i] = reader.generation(ofTorrentFile: i)
        }
        // Nothing on disk (a new or empty directory): nothing to look at, file by file.
        guard !onDisk.isEmpty else { return result }
        var sizes: [Int: Int64] = [:]
        for (i, f) in m.files.enumerated() where f.length > 0 && !f.isSymlink {
            if let size = onDisk[f.pathString] { sizes[i] = size }
        }
        var buffer = [UInt8]()
        var unchecked = Set<Int>()
        for p in coveredPieces(check: check, sizes: sizes) where !result.pieces.contains(p) {
            guard check.canCheck(piece: p) else {
                if let f = check.file(ofPiece: p) { unchecked.insert(f) }
                continue
            }
            let (offset, length) = check.span(ofPiece: p)
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
        result.unchecked = unchecked.sorted()
        // Only files that exist: asking the (writable) reader about another would create it.
        for i in sizes.keys.sorted() { result.generations[i] = reader.generation(ofTorrentFile: i) }
        return result
    }

    /// The pieces whose bytes can all be on disk, in order: every file under the piece is
    /// there and long enough to hold its part (`sizes`: file index → size on disk, for the
    /// torrent's non-empty files that exist). The rest were never written. One pass over the
    /// files and their pieces.
    static func coveredPieces(check: PieceCheck, sizes: [Int: Int64]) -> [Int] {
        let m = check.metainfo
        guard m.pieceCount > 0, !sizes.isEmpty else { return [] }
        let pl = Int64(m.pieceLength)
        // 0: no file seen under the piece, 1: every file so far holds its part, 2: one does not.
        var state = [UInt8](repeating: 0, count: m.pieceCount)
        for (i, f) in m.files.enumerated() where f.length > 0 && !f.isSymlink {
            let size = sizes[i] ?? 0
            let first = Int(f.offset / pl)
            let last = min(Int((f.offset + f.length - 1) / pl), m.pieceCount - 1)
            guard first <= last else { continue }
            for p in first...last {
                let (offset, length) = check.span(ofPiece: p)
                let end = offset + Int64(length)
                guard f.offset < end, f.offset + f.length > offset else { continue }
                let holds = size >= min(f.length, end - f.offset)
                state[p] = holds && state[p] != 2 ? 1 : 2
            }
        }
        return state.indices.filter { state[$0] == 1 }
    }

    /// `directory` may be missing, empty, or hold only files and folders of this torrent.
    /// Returns the sizes of the torrent's regular files found there, by path (empty when the
    /// directory is new or empty).
    @discardableResult
    static func checkDirectory(_ directory: String, metainfo m: Metainfo) throws(FetchError) -> [String: Int64] {
        var st = stat()
        if lstat(directory, &st) != 0 {
            guard errno == ENOENT else { throw .storage(.unreadable(directory, reason: errnoText(errno))) }
            var at = directory.hasPrefix("/") ? "" : "."
            for part in directory.split(separator: "/") {
                at += "/" + part
                if mkdir(at, 0o755) != 0 && errno != EEXIST { throw .storage(.writeFailed(directory, reason: errnoText(errno))) }
            }
            return [:]
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw .directoryInUse(directory, entry: nil) }
        // The torrent's names, gathered only once the directory turns out to hold something.
        var names: (files: Set<String>, folders: Set<String>)?
        func torrentNames() -> (files: Set<String>, folders: Set<String>) {
            if let names { return names }
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
            names = (files, folders)
            return (files, folders)
        }
        var found: [String: Int64] = [:]
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
                let (files, folders) = torrentNames()
                switch est.st_mode & S_IFMT {
                case S_IFDIR where folders.contains(path): pending.append(path)
                case S_IFREG where files.contains(path): found[path] = Int64(est.st_size)
                default: throw .directoryInUse(directory, entry: path)
                }
            }
        }
        return found
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
        // Files are made as their first piece is written; the empty ones (and, in a v1
        // torrent, any file no piece was written to) only now. Pad files never.
        do { try reader.createFiles() } catch { throw .storage(error) }
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
    private let state = Locked<Set<String>>([])
    private let writing = Lock()

    func save(metainfo m: Metainfo, reader: PieceReader, directory: String, pieces: PieceSet, path: String, final: Bool) throws(FetchError) {
        let result: Result<Void, FetchError> = writing.withLock {
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
    /// The engine is stopping: whoever still waits on the download is told so.
    case shuttingDown

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
        case .shuttingDown: "webseed is shutting down"
        }
    }
}
