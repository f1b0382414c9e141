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

/// What a seeder may serve from a directory: the pieces that verified against the
/// torrent, and the Merkle trees of the files that did (for BEP 52 hash requests).
public struct LocalData: Sendable {
    public var pieces: PieceSet
    public var trees: [SHA256Digest: MerkleTree]
    /// For each verified file (index into `metainfo.files`): what it was when it verified.
    /// While a file still matches this, reads need not hash it again.
    public var generations: [Int: FileGeneration] = [:]
    /// Files that are missing, have the wrong size or the wrong content.
    public var problems: [SiteVerifier.Problem]
    /// Files whose hashing was skipped because the resume record vouched for them.
    public var filesFromResume: Int
    public var filesHashed: Int
    /// Why the resume record was not used although there is one (not a regular file, too
    /// large, unreadable); everything was hashed instead. Worth a warning naming the path.
    public var resumeProblem: StorageError? = nil
}

extension LocalData {
    /// Data that was hashed just now to make the torrent: all of it verified. A file still
    /// as the listing saw it (size and mtime, which hashing checked after reading) keeps
    /// its identity, so reads need not hash it again.
    public init(metainfo m: Metainfo, directory: String, freshlyHashed files: [HashedFile], listing: [SiteFile]) {
        var trees: [SHA256Digest: MerkleTree] = [:]
        for f in files { if let t = f.tree { trees[t.root] = t } }
        let listed = Dictionary(listing.map { ($0.pathString, $0) }, uniquingKeysWith: { a, _ in a })
        var generations: [Int: FileGeneration] = [:]
        for (i, f) in m.files.enumerated() where f.length > 0 {
            var st = stat()
            guard let seen = listed[f.pathString], stat(directory + "/" + f.pathString, &st) == 0,
                  Int64(st.st_size) == seen.size, FileTime(st) == seen.modified else { continue }
            generations[i] = FileGeneration(st)
        }
        self.init(pieces: PieceSet(count: m.pieceCount, full: true), trees: trees, generations: generations, problems: [],
                  filesFromResume: 0, filesHashed: files.count)
    }

    public func saveResume(metainfo m: Metainfo, directory: String, path: String) throws(StorageError) {
        try ResumeRecord(metainfo: m, data: self).save(path: path)
    }
}

/// Verifies local data before anything is served, using a resume record (each file's
/// identity when it verified, plus leaf hashes) to skip files that are still that file.
public enum LocalDataVerifier {
    public static func verify(_ m: Metainfo, directory: String, resumePath: String?, recheck: Bool = false,
                              threads: Int? = nil, progress: HashProgress? = nil) -> LocalData {
        var resume: ResumeRecord?
        var resumeProblem: StorageError?
        if !recheck, let resumePath {
            do { resume = try ResumeRecord.load(path: resumePath, metainfo: m) } catch { resumeProblem = error }
        }
        var data = m.version.hasV2
            ? verifyV2(m, directory: directory, resume: resume, threads: threads, progress: progress)
            : verifyV1(m, directory: directory, resume: resume, progress: progress)
        data.resumeProblem = resumeProblem
        if let resumePath {
            // Replaces whatever was there (a FIFO included) by renaming over it.
            let record = ResumeRecord(metainfo: m, data: data)
            try? record.save(path: resumePath)  // an optimisation: failing to save costs only a re-check next time
        }
        return data
    }

    private static func regularFile(_ path: String) -> (size: Int64, time: FileTime, generation: FileGeneration)? {
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
        return (Int64(st.st_size), FileTime(st), FileGeneration(st))
    }

    private static func verifyV2(_ m: Metainfo, directory: String, resume: ResumeRecord?, threads: Int?, progress: HashProgress?) -> LocalData {
        var pieces = PieceSet(count: m.pieceCount)
        var trees: [SHA256Digest: MerkleTree] = [:]
        var problems: [SiteVerifier.Problem] = []
        var toHash: [(index: Int, file: SiteFile)] = []
        var generations: [Int: FileGeneration] = [:]
        var seen: [Int: FileGeneration] = [:]
        var fromResume = 0
        let pl = Int64(m.pieceLength)

        func accept(_ i: Int, _ tree: MerkleTree?) {
            let f = m.files[i]
            if let t = tree { trees[t.root] = t }
            let first = Int(f.offset / pl)
            pieces.insert(first..<(first + Int((f.length + pl - 1) / pl)))
        }

        for (i, f) in m.files.enumerated() where !f.isSymlink && f.length > 0 {
            let path = directory + "/" + f.pathString
            guard let st = regularFile(path) else {
                problems.append(access(path, F_OK) == 0 ? .notAFile(f.pathString) : .missing(f.pathString))
                continue
            }
            guard st.size == f.length else {
                problems.append(.wrongSize(f.pathString, expected: f.length, actual: st.size))
                continue
            }
            seen[i] = st.generation
            if let r = resume?.files[i], r.identity == st.generation, let leaves = r.leaves {
                let tree = MerkleTree(leaves: leaves)
                if tree.root == f.piecesRoot {
                    accept(i, tree)
                    generations[i] = st.generation
                    fromResume += 1
                    continue
                }
            }
            toHash.append((i, SiteFile(path: f.path, absolutePath: path, size: f.length, modified: st.time)))
        }

        var options = ContentHasher.Options(pieceLength: m.pieceLength, hybrid: m.version == .hybrid)
        options.singleFile = m.isSingleFile
        if let threads { options.threads = threads }
        // One parallel pass over everything that needs hashing; if a file changes or cannot
        // be read meanwhile, fall back to file by file so only that one is lost.
        var results: [HashedFile?]
        if let all = try? ContentHasher.hash(toHash.map(\.file), options: options, progress: progress) {
            results = all
        } else {
            results = toHash.map { (try? ContentHasher.hash([$0.file], options: options))?.first }
        }
        for (k, (i, _)) in toHash.enumerated() {
            let f = m.files[i]
            guard let h = results[k] else { problems.append(.unreadable(f.pathString, reason: "it changed or could not be read while being checked")); continue }
            var same = h.tree?.root == f.piecesRoot
            if same, m.version == .hybrid {
                let first = Int(f.offset / pl)
                same = Array(m.v1PieceHashes[first..<(first + h.v1PieceHashes.count)]) == h.v1PieceHashes
            }
            if same {
                accept(i, h.tree)
                // Hashing checked the mtime after reading; the identity seen before it holds.
                generations[i] = seen[i]
            } else {
                problems.append(.contentDiffers(f.pathString))
            }
        }
        // Empty files hold no pieces; symlinks are never served.
        return LocalData(pieces: pieces, trees: trees, generations: generations, problems: problems, filesFromResume: fromResume, filesHashed: toHash.count)
    }

    private static func verifyV1(_ m: Metainfo, directory: String, resume: ResumeRecord?, progress: HashProgress?) -> LocalData {
        var problems: [SiteVerifier.Problem] = []
        var unchanged = resume != nil
        var skip = Set<String>()
        var before: [Int: FileGeneration] = [:]
        for (i, f) in m.files.enumerated() where f.length > 0 {
            let path = directory + "/" + f.pathString
            guard let st = regularFile(path) else {
                problems.append(access(path, F_OK) == 0 ? .notAFile(f.pathString) : .missing(f.pathString))
                skip.insert(f.pathString)
                unchanged = false
                continue
            }
            guard st.size == f.length else {
                problems.append(.wrongSize(f.pathString, expected: f.length, actual: st.size))
                skip.insert(f.pathString)
                unchanged = false
                continue
            }
            before[i] = st.generation
            if resume?.files[i].identity != st.generation { unchanged = false }
        }
        if unchanged, let r = resume, let pieces = r.pieces {
            return LocalData(pieces: pieces, trees: [:], generations: before, problems: problems, filesFromResume: m.files.count, filesHashed: 0)
        }
        let result = V1StreamVerifier.verify(m, directory: directory, skip: skip, progress: progress)
        // A file that changed while the stream was read vouches for nothing: its blocks are
        // checked piece by piece when served.
        let generations = before.filter { i, g in regularFile(directory + "/" + m.files[i].pathString)?.generation == g }
        for ei in result.badEntries.sorted() {
            let path = m.v1Entries[ei].path.joined(separator: "/")
            if m.v1Entries[ei].isPad || skip.contains(path) { continue }
            problems.append(result.unreadable[path].map { .unreadable(path, reason: $0) } ?? .contentDiffers(path))
        }
        return LocalData(pieces: result.goodPieces, trees: [:], generations: generations, problems: problems, filesFromResume: 0, filesHashed: m.files.count)
    }
}

/// v1 pieces span files: the stream is read in order and each piece checked with SHA-1;
/// a bad piece blames every file it overlaps.
enum V1StreamVerifier {
    struct Result {
        var goodPieces: PieceSet
        var badEntries: Set<Int>  // indices into v1Entries
        var unreadable: [String: String]
    }

    static func verify(_ m: Metainfo, directory: String, skip: Set<String>, progress: HashProgress?) -> Result {
        let pl = Int64(m.pieceLength)
        let sha1 = SHA1Hasher()
        var good = PieceSet(count: m.v1PieceHashes.count)
        var bad = Set<Int>()
        var pieceEntries: [Int] = []
        var pieceFilled: Int64 = 0
        var pieceBroken = false
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        var unreadable: [String: String] = [:]
        var piece = 0

        func finishPiece() {
            if piece < m.v1PieceHashes.count {
                if !pieceBroken && sha1.finish() == m.v1PieceHashes[piece] { good.insert(piece) } else { bad.formUnion(pieceEntries) }
            }
            sha1.reset()
            pieceEntries = []
            pieceFilled = 0
            pieceBroken = false
            piece += 1
        }

        for (ei, e) in m.v1Entries.enumerated() {
            var left = e.length
            let path = e.path.joined(separator: "/")
            var fd: Int32 = -1
            if !e.isPad && left > 0 && !skip.contains(path) {
                do {
                    if let (opened, _) = try openRegularFile(directory + "/" + path, O_RDONLY) { fd = opened } else { unreadable[path] = errnoText(ENOENT) }
                } catch {
                    unreadable[path] = error.description
                }
            }
            defer { if fd >= 0 { close(fd) } }
            var fileOffset: Int64 = 0
            while left > 0 {
                let n = Int(min(min(left, pl - pieceFilled), Int64(buffer.count)))
                let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n])
                if fd >= 0, pread(fd, chunk.baseAddress!, n, off_t(fileOffset)) == n {
                    sha1.update(UnsafeRawBufferPointer(chunk))
                } else {
                    chunk.initializeMemory(as: UInt8.self, repeating: 0)  // pad files are zeros
                    sha1.update(UnsafeRawBufferPointer(chunk))
                    if !e.isPad { pieceBroken = true; bad.insert(ei) }
                }
                if pieceEntries.last != ei { pieceEntries.append(ei) }
                progress?.add(n)
                left -= Int64(n)
                fileOffset += Int64(n)
                pieceFilled += Int64(n)
                if pieceFilled == pl { finishPiece() }
            }
        }
        if pieceFilled > 0 { finishPiece() }
        return Result(goodPieces: good, badEntries: bad, unreadable: unreadable)
    }
}

extension LocalData {
    /// What a download starts from: `pieces` found verified on disk, no trees yet.
    public init(downloaded pieces: PieceSet, generations: [Int: FileGeneration]) {
        self.init(pieces: pieces, trees: [:], generations: generations, problems: [], filesFromResume: 0, filesHashed: 0)
    }
}
