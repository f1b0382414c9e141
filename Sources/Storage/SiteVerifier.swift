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

/// `webseed verify`: checks a directory against a torrent, file by file.
public enum SiteVerifier {
    public enum Problem: Sendable, Equatable, CustomStringConvertible {
        case missing(String)
        case notAFile(String)
        case wrongSize(String, expected: Int64, actual: Int64)
        case contentDiffers(String)
        case unreadable(String, reason: String)

        public var path: String {
            switch self {
            case .missing(let p), .notAFile(let p), .contentDiffers(let p): p
            case .wrongSize(let p, _, _), .unreadable(let p, _): p
            }
        }

        public var description: String {
            switch self {
            case .missing(let p): "missing: \(p)"
            case .notAFile(let p): "not a regular file: \(p)"
            case .wrongSize(let p, let e, let a): "wrong size: \(p) (\(a) bytes, expected \(e))"
            case .contentDiffers(let p): "content differs: \(p)"
            case .unreadable(let p, let reason): "unreadable: \(p) (\(reason))"
            }
        }
    }

    public struct Report: Sendable {
        public var checked: Int
        public var problems: [Problem]
        public var ok: Bool { problems.isEmpty }
    }

    /// `directory` holds the torrent's files directly (not under `name`).
    public static func verify(_ m: Metainfo, directory: String, threads: Int? = nil, progress: HashProgress? = nil) -> Report {
        var problems: [Problem] = []
        var present: [(index: Int, file: SiteFile)] = []
        for (i, f) in m.files.enumerated() where !f.isSymlink {
            let full = directory + "/" + f.pathString
            var st = stat()
            guard stat(full, &st) == 0 else {
                problems.append(errno == ENOENT || errno == ENOTDIR ? .missing(f.pathString) : .unreadable(f.pathString, reason: errnoText(errno)))
                continue
            }
            guard st.st_mode & S_IFMT == S_IFREG else { problems.append(.notAFile(f.pathString)); continue }
            guard Int64(st.st_size) == f.length else {
                problems.append(.wrongSize(f.pathString, expected: f.length, actual: Int64(st.st_size)))
                continue
            }
            if f.length > 0 {
                present.append((i, SiteFile(path: f.path, absolutePath: full, size: f.length, modified: FileTime(st))))
            }
        }
        if m.version.hasV2 {
            problems += verifyV2(m, present, threads: threads, progress: progress)
        } else {
            problems += verifyV1(m, directory: directory, skip: Set(problems.map(\.path)), progress: progress)
        }
        let order = Dictionary(uniqueKeysWithValues: m.files.enumerated().map { ($1.pathString, $0) })
        problems.sort { order[$0.path, default: 0] < order[$1.path, default: 0] }
        return Report(checked: m.files.count, problems: problems)
    }

    /// v2 and hybrid: every file's Merkle root (and for hybrids its SHA-1 pieces) must match.
    private static func verifyV2(_ m: Metainfo, _ present: [(index: Int, file: SiteFile)], threads: Int?, progress: HashProgress?) -> [Problem] {
        var problems: [Problem] = []
        // Hash file by file so one unreadable or changing file is reported, not fatal.
        var options = ContentHasher.Options(pieceLength: m.pieceLength, hybrid: m.version == .hybrid)
        options.singleFile = m.isSingleFile
        if let threads { options.threads = threads }
        for (index, file) in present {
            let expected = m.files[index]
            do {
                let hashed = try ContentHasher.hash([file], options: options, progress: progress)[0]
                var same = hashed.tree?.root == expected.piecesRoot
                if same, m.version == .hybrid {
                    let first = Int(expected.offset / Int64(m.pieceLength))
                    same = Array(m.v1PieceHashes[first..<(first + hashed.v1PieceHashes.count)]) == hashed.v1PieceHashes
                }
                if !same { problems.append(.contentDiffers(expected.pathString)) }
            } catch {
                problems.append(.unreadable(expected.pathString, reason: error.description))
            }
        }
        return problems
    }

    /// v1: pieces span files; see `V1StreamVerifier`.
    private static func verifyV1(_ m: Metainfo, directory: String, skip: Set<String>, progress: HashProgress?) -> [Problem] {
        let result = V1StreamVerifier.verify(m, directory: directory, skip: skip, progress: progress)
        var problems: [Problem] = []
        for ei in result.badEntries.sorted() {
            let e = m.v1Entries[ei]
            let path = e.path.joined(separator: "/")
            if e.isPad || skip.contains(path) { continue }
            problems.append(result.unreadable[path].map { .unreadable(path, reason: $0) } ?? .contentDiffers(path))
        }
        return problems
    }
}
