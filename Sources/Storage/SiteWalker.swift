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
        /// Threads listing directories (default: one per core).
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
        let walker = SiteWalker(rootReal: rootReal, options: options, patterns: options.excludes + (options.useDefaultExcludes ? defaultExcludes : []))
        let (files, warnings) = try walker.listByLevels()
        guard !files.isEmpty else { throw .emptyDirectory(root) }
        return Result(root: rootReal, files: files, warnings: warnings)
    }

    /// What listing one directory found, in its name order: files and warnings, and the
    /// subdirectories left to list next (their index among its `children`).
    private enum Item {
        case file(SiteFile)
        case warning(String)
        case directory(Int)
    }

    /// A directory to list, with the identities of the directories above it (tracked only
    /// when symlinks are followed).
    private struct Job: Sendable {
        var path: String
        var relative: [String]
        var visited: Set<DirID>
    }

    private struct Listed: Sendable {
        var items: [Item] = []
        var children: [Job] = []
        /// The error that stopped this directory's listing, after `items`.
        var error: StorageError?
    }

    /// Lists the tree a level at a time, each level's directories on every core (listing is
    /// dominated by one stat per file in the kernel, and a site often keeps thousands of
    /// files under one folder, or one folder per page), then puts the levels back together
    /// in file-tree order. Files, warnings and the error reported (the first in tree order)
    /// are those of a serial walk.
    private func listByLevels() throws(StorageError) -> (files: [SiteFile], warnings: [String]) {
        var listed: [Listed] = []
        var firstChild: [Int] = []  // by directory: where its children are in `listed`
        var level = [Job(path: rootReal, relative: [], visited: [])]
        while !level.isEmpty {
            let results = listLevel(level)
            var next: [Job] = []
            for r in results {
                firstChild.append(listed.count + results.count + next.count)
                next += r.children
            }
            listed += results
            level = next
        }
        var files: [SiteFile] = []
        var warnings: [String] = []
        func assemble(_ index: Int) throws(StorageError) {
            for item in listed[index].items {
                switch item {
                case .file(let f):
                    files.append(f)
                    guard files.count <= options.maxFiles else { throw .tooManyFiles(limit: options.maxFiles) }
                case .warning(let w):
                    warnings.append(w)
                case .directory(let child):
                    try assemble(firstChild[index] + child)
                }
            }
            if let error = listed[index].error { throw error }
        }
        try assemble(0)
        return (files, warnings)
    }

    private func listLevel(_ jobs: [Job]) -> [Listed] {
        let threads = max(1, min(jobs.count, options.threads))
        guard threads > 1 else { return jobs.map(list) }
        let results = Locked([Listed?](repeating: nil, count: jobs.count))
        let next = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            while true {
                let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard i < jobs.count else { return }
                let outcome = list(jobs[i])
                results.withLock { $0[i] = outcome }
            }
        }
        return results.withLock { $0.map { $0! } }
    }

    /// Lists one directory, leaving its subdirectories to the next level.
    private func list(_ job: Job) -> Listed {
        var walker = self
        walker.visited = job.visited
        do throws(StorageError) {
            try walker.walkDirectory(job.path, relative: job.relative, deferring: true)
            return Listed(items: walker.items, children: walker.children)
        } catch {
            return Listed(items: walker.items, children: walker.children, error: error)
        }
    }

    /// Identity of a directory, to notice a followed symlink leading back into the current path.
    private struct DirID: Hashable, Sendable {
        var dev: UInt64
        var ino: UInt64
        init(_ st: stat) { dev = UInt64(st.st_dev); ino = UInt64(st.st_ino) }
    }

    private let rootReal: String
    private let options: Options
    private let compiled: Patterns
    /// Files listed in all, by every thread: `maxFiles` bounds the whole tree.
    private let counted: FileCount
    /// What the directory being listed holds so far, and its subdirectories left for later.
    private var items: [Item] = []
    private var children: [Job] = []
    private var visited = Set<DirID>()

    private init(rootReal: String, options: Options, patterns: [String]) {
        self.rootReal = rootReal
        self.options = options
        self.compiled = Patterns(patterns)
        self.counted = FileCount()
    }

    private final class FileCount: Sendable {
        let value = Atomic<Int>(0)
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

    /// Lists `dirPath`. `deferring`: a subdirectory becomes a child job, listed with the next
    /// level; otherwise (inside a followed symlink) it is walked here and now.
    private mutating func walkDirectory(_ dirPath: String, relative: [String], deferring: Bool) throws(StorageError) {
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
                items.append(.warning(StorageError.symlinkLoop(display(relative)).description))
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
            case S_IFDIR where deferring:
                children.append(Job(path: full, relative: rel, visited: visited))
                items.append(.directory(children.count - 1))
            case S_IFDIR:
                try walkDirectory(full, relative: rel, deferring: false)
            case S_IFREG:
                try add(SiteFile(path: rel, absolutePath: full, size: Int64(st.st_size), modified: FileTime(st)))
            case S_IFLNK:
                try symlink(full, relative: rel)
            default:
                items.append(.warning("skipped \(display(rel)): not a regular file"))
            }
        }
    }

    private mutating func add(_ f: SiteFile) throws(StorageError) {
        items.append(.file(f))
        guard counted.value.wrappingAdd(1, ordering: .relaxed).newValue <= options.maxFiles else { throw .tooManyFiles(limit: options.maxFiles) }
    }

    private mutating func symlink(_ full: String, relative rel: [String]) throws(StorageError) {
        guard options.followSymlinks else {
            items.append(.warning("skipped symlink \(display(rel)) (use --follow-symlinks to include what it points to inside the directory)"))
            return
        }
        guard let resolved = realpath(full, nil) else {
            items.append(.warning("skipped symlink \(display(rel)): \(errnoText(errno))"))
            return
        }
        let target = String(cString: resolved)
        free(resolved)
        guard target == rootReal || target.hasPrefix(rootReal + "/") else {
            items.append(.warning(StorageError.symlinkEscapes(display(rel), target: target).description))
            return
        }
        var st = stat()
        guard stat(target, &st) == 0 else { throw .unreadable(display(rel), reason: errnoText(errno)) }
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            try walkDirectory(target, relative: rel, deferring: false)
        case S_IFREG:
            try add(SiteFile(path: rel, absolutePath: target, size: Int64(st.st_size), modified: FileTime(st)))
        default:
            items.append(.warning("skipped symlink \(display(rel)): it does not point to a regular file or directory"))
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
