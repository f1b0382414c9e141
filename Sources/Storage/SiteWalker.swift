import Locking
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A regular file found in a site directory.
public struct SiteFile: Sendable, Equatable {
    /// Components relative to the site root, valid UTF-8.
    public var path: [String]
    /// Where to read it (a symlink's resolved target when links are followed).
    public var absolutePath: String
    public var size: Int64
    /// Modification time (seconds, nanoseconds) seen when the file was listed; nil when unknown.
    public var modified: FileTime?

    public init(path: [String], absolutePath: String, size: Int64, modified: FileTime?) {
        self.path = path
        self.absolutePath = absolutePath
        self.size = size
        self.modified = modified
    }

    public var pathString: String { path.joined(separator: "/") }
}

public struct FileTime: Sendable, Equatable, Codable {
    public var seconds: Int64
    public var nanoseconds: Int64
}

/// Lists the files of a site directory: regular files only, names as raw bytes checked
/// for UTF-8, exclusions applied, symlinks skipped (or followed without leaving the root).
public struct SiteWalker: Sendable {
    /// Version-control folders and operating-system clutter: never part of a site.
    /// Other dotfiles (`.well-known/`, `.htaccess`) are content and are kept.
    public static let defaultExcludes = [
        ".git", ".hg", ".svn", ".bzr", "_darcs", "CVS", ".fslckout", ".jj",
        ".DS_Store", "._*", ".AppleDouble", ".Spotlight-V100", ".Trashes", ".fseventsd", ".TemporaryItems",
        "Thumbs.db", "ehthumbs.db", "desktop.ini", "$RECYCLE.BIN",
    ]

    public struct Options: Sendable {
        public var excludes: [String] = []
        public var useDefaultExcludes = true
        public var followSymlinks = false
        public var maxFiles = 1_000_000
        /// Threads listing subdirectories of the root (default: one per core).
        public var threads = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        public init() {}
    }

    public struct Result: Sendable {
        public var root: String
        /// In file-tree order (entries sorted by raw name bytes, depth first).
        public var files: [SiteFile]
        public var warnings: [String]
    }

    public static func walk(_ root: String, options: Options = Options()) throws(StorageError) -> Result {
        var st = stat()
        guard stat(root, &st) == 0 else {
            if errno == ENOENT { throw .notFound(root) }
            throw .unreadable(root, reason: errnoText(errno))
        }
        guard st.st_mode & S_IFMT == S_IFDIR else { throw .notADirectory(root) }
        guard let real = realpath(root, nil) else { throw .unreadable(root, reason: errnoText(errno)) }
        let rootReal = String(cString: real)
        free(real)
        var walker = SiteWalker(rootReal: rootReal, options: options, patterns: options.excludes + (options.useDefaultExcludes ? defaultExcludes : []))
        // The root is listed here; its subdirectories are walked on every core, since
        // listing is dominated by one stat per file in the kernel.
        walker.deferTopLevelDirectories = true
        try walker.walkDirectory(rootReal, relative: [])
        walker.deferTopLevelDirectories = false
        // Root files and subdirectory results interleave by name, so that, like the serial
        // walk, the listing comes out in file-tree order.
        var files: [SiteFile] = []
        var warnings = walker.warnings
        var rootFiles = walker.files[...]
        for (dir, outcome) in zip(walker.deferred, walkInParallel(walker, walker.deferred)) {
            let name = dir.relative[0]
            while let f = rootFiles.first, f.path[0].utf8.lexicographicallyPrecedes(name.utf8) {
                files.append(f)
                rootFiles = rootFiles.dropFirst()
            }
            switch outcome {
            case .success(let w):
                files += w.files
                warnings += w.warnings
            case .failure(let error):
                throw error
            }
            guard files.count <= options.maxFiles else { throw .tooManyFiles(limit: options.maxFiles) }
        }
        files += rootFiles
        guard !files.isEmpty else { throw .emptyDirectory(root) }
        return Result(root: rootReal, files: files, warnings: warnings)
    }

    /// Walks each directory with its own copy of `template` (no shared state); results
    /// come back in the order given, so output and the error reported are deterministic.
    private static func walkInParallel(_ template: SiteWalker, _ dirs: [(path: String, relative: [String])]) -> [Swift.Result<SiteWalker, StorageError>] {
        let job = ParallelWalk(template: template, dirs: dirs)
        let threads = max(1, min(dirs.count, template.options.threads))
        if threads == 1 { job.work() } else { DispatchQueue.concurrentPerform(iterations: threads) { _ in job.work() } }
        return job.results.withLock { r in dirs.indices.map { r[$0]! } }
    }

    private final class ParallelWalk: Sendable {
        let template: SiteWalker
        let dirs: [(path: String, relative: [String])]
        let next = Atomic<Int>(0)
        let results = Locked<[Int: Swift.Result<SiteWalker, StorageError>]>([:])

        init(template: SiteWalker, dirs: [(path: String, relative: [String])]) {
            self.template = template
            self.dirs = dirs
        }

        func work() {
            while true {
                let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard i < dirs.count else { return }
                var w = template
                w.files = []
                w.warnings = []
                w.deferred = []
                let outcome: Swift.Result<SiteWalker, StorageError>
                do throws(StorageError) {
                    try w.walkDirectory(dirs[i].path, relative: dirs[i].relative)
                    outcome = .success(w)
                } catch {
                    outcome = .failure(error)
                }
                results.withLock { $0[i] = outcome }
            }
        }
    }

    /// Identity of a directory, to notice a followed symlink leading back into the current path.
    private struct DirID: Hashable {
        var dev: UInt64
        var ino: UInt64
        init(_ st: stat) { dev = UInt64(st.st_dev); ino = UInt64(st.st_ino) }
    }

    private let rootReal: String
    private let options: Options
    private let compiled: Patterns
    private var files: [SiteFile] = []
    private var warnings: [String] = []
    private var visited = Set<DirID>()
    /// While listing the root: subdirectories to walk afterwards, in parallel.
    private var deferTopLevelDirectories = false
    private var deferred: [(path: String, relative: [String])] = []

    private init(rootReal: String, options: Options, patterns: [String]) {
        self.rootReal = rootReal
        self.options = options
        self.compiled = Patterns(patterns)
    }

    /// Exclusion patterns split once: a pattern with a '/' matches the whole path from the
    /// site root (a leading '/' only anchors it); one without matches a name at any depth.
    /// Literal names (most patterns, all but one default) are a set lookup; only real
    /// globs go through fnmatch, which matters with tens of thousands of files.
    private struct Patterns {
        var literalNames: Set<String> = []
        var names: [[CChar]] = []
        var paths: [[CChar]] = []
        init(_ patterns: [String]) {
            for p in patterns {
                if p.contains("/") {
                    paths.append(Array((p.hasPrefix("/") ? String(p.dropFirst()) : p).utf8CString))
                } else if p.contains(where: { "*?[\\".contains($0) }) {
                    names.append(Array(p.utf8CString))
                } else {
                    literalNames.insert(p)
                }
            }
        }
    }

    private func excluded(name: String, relative: [String]) -> Bool {
        if compiled.literalNames.contains(name) { return true }
        if !compiled.names.isEmpty {
            let hit = name.withCString { subject in
                compiled.names.contains { fnmatch($0, subject, 0) == 0 }
            }
            if hit { return true }
        }
        if !compiled.paths.isEmpty {
            return relative.joined(separator: "/").withCString { subject in
                compiled.paths.contains { fnmatch($0, subject, FNM_PATHNAME) == 0 }
            }
        }
        return false
    }

    private mutating func walkDirectory(_ dirPath: String, relative: [String]) throws(StorageError) {
        let fd = open(dirPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0, let dir = fdopendir(fd) else {
            let reason = errnoText(errno)
            if fd >= 0 { close(fd) }
            throw .unreadable(display(relative), reason: reason)
        }
        defer { closedir(dir) }
        // Loops are only possible through followed symlinks; only then are directory
        // identities tracked.
        if options.followSymlinks {
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw .unreadable(display(relative), reason: errnoText(errno)) }
            let id = DirID(st)
            guard visited.insert(id).inserted else {
                warnings.append(StorageError.symlinkLoop(display(relative)).description)
                return
            }
        }
        defer { if options.followSymlinks { var st = stat(); if fstat(fd, &st) == 0 { visited.remove(DirID(st)) } } }

        var entries: [(name: [UInt8], type: UInt8)] = []
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { throw .unreadable(display(relative), reason: errnoText(errno)) }
                break
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                Array(raw.prefix(while: { $0 != 0 }))
            }
            if name == [0x2e] || name == [0x2e, 0x2e] { continue }
            entries.append((name, entry.pointee.d_type))
        }
        entries.sort { $0.name.lexicographicallyPrecedes($1.name) }  // stable warnings and errors, whatever readdir's order
        for (raw, type) in entries {
            guard let name = String(validating: raw, as: UTF8.self) else {
                let shown = (relative + [String(decoding: raw, as: UTF8.self)]).joined(separator: "/")
                throw .invalidName(path: shown, reason: "its name is not valid UTF-8 (rename it, or exclude it with --exclude)")
            }
            let rel = relative + [name]
            if excluded(name: name, relative: rel) { continue }
            let full = dirPath + "/" + name
            var kind = mode_t(0)
            var st = stat()
            if type == UInt8(DT_DIR) {
                kind = S_IFDIR
            } else {
                // Relative to the open directory: no second walk down the whole path.
                guard fstatat(fd, raw + [0], &st, AT_SYMLINK_NOFOLLOW) == 0 else {
                    throw .unreadable(display(rel), reason: errnoText(errno))
                }
                kind = st.st_mode & S_IFMT
            }
            switch kind {
            case S_IFDIR where deferTopLevelDirectories && relative.isEmpty:
                deferred.append((full, rel))
            case S_IFDIR:
                try walkDirectory(full, relative: rel)
            case S_IFREG:
                try add(SiteFile(path: rel, absolutePath: full, size: Int64(st.st_size), modified: FileTime(st)))
            case S_IFLNK:
                try symlink(full, relative: rel)
            default:
                warnings.append("skipped \(display(rel)): not a regular file")
            }
        }
    }

    private mutating func add(_ f: SiteFile) throws(StorageError) {
        files.append(f)
        guard files.count <= options.maxFiles else { throw .tooManyFiles(limit: options.maxFiles) }
    }

    private mutating func symlink(_ full: String, relative rel: [String]) throws(StorageError) {
        guard options.followSymlinks else {
            warnings.append("skipped symlink \(display(rel)) (use --follow-symlinks to include what it points to inside the directory)")
            return
        }
        guard let resolved = realpath(full, nil) else {
            warnings.append("skipped symlink \(display(rel)): \(errnoText(errno))")
            return
        }
        let target = String(cString: resolved)
        free(resolved)
        guard target == rootReal || target.hasPrefix(rootReal + "/") else {
            warnings.append(StorageError.symlinkEscapes(display(rel), target: target).description)
            return
        }
        var st = stat()
        guard stat(target, &st) == 0 else { throw .unreadable(display(rel), reason: errnoText(errno)) }
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            try walkDirectory(target, relative: rel)
        case S_IFREG:
            try add(SiteFile(path: rel, absolutePath: target, size: Int64(st.st_size), modified: FileTime(st)))
        default:
            warnings.append("skipped symlink \(display(rel)): it does not point to a regular file or directory")
        }
    }

    private func display(_ rel: [String]) -> String {
        rel.isEmpty ? rootReal : rootReal + "/" + rel.joined(separator: "/")
    }
}

extension FileTime {
    init(_ st: stat) {
        #if canImport(Darwin)
        self.init(seconds: Int64(st.st_mtimespec.tv_sec), nanoseconds: Int64(st.st_mtimespec.tv_nsec))
        #else
        self.init(seconds: Int64(st.st_mtim.tv_sec), nanoseconds: Int64(st.st_mtim.tv_nsec))
        #endif
    }
}
