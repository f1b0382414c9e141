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
public struct SiteWalker {
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
        public init() {}
    }

    public struct Result: Sendable {
        public var root: String
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
        try walker.walkDirectory(rootReal, relative: [], id: DirID(st))
        guard !walker.files.isEmpty else { throw .emptyDirectory(root) }
        return Result(root: rootReal, files: walker.files, warnings: walker.warnings)
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

    private init(rootReal: String, options: Options, patterns: [String]) {
        self.rootReal = rootReal
        self.options = options
        self.compiled = Patterns(patterns)
    }

    /// Exclusion patterns split once: a pattern with a '/' matches the whole path from the
    /// site root (a leading '/' only anchors it); one without matches a name at any depth.
    private struct Patterns {
        var names: [[CChar]] = []
        var paths: [[CChar]] = []
        init(_ patterns: [String]) {
            for p in patterns {
                if p.contains("/") {
                    paths.append(Array((p.hasPrefix("/") ? String(p.dropFirst()) : p).utf8CString))
                } else {
                    names.append(Array(p.utf8CString))
                }
            }
        }
    }

    private func excluded(name: String, relative: [String]) -> Bool {
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

    private mutating func walkDirectory(_ dirPath: String, relative: [String], id: DirID) throws(StorageError) {
        guard visited.insert(id).inserted else {
            warnings.append(StorageError.symlinkLoop(display(relative)).description)
            return
        }
        defer { visited.remove(id) }
        guard let dir = opendir(dirPath) else {
            throw .unreadable(display(relative), reason: errnoText(errno))
        }
        defer { closedir(dir) }
        var names: [[UInt8]] = []
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
            names.append(name)
        }
        names.sort { $0.lexicographicallyPrecedes($1) }  // stable warnings and errors, whatever readdir's order
        for raw in names {
            guard let name = String(validating: raw, as: UTF8.self) else {
                let shown = (relative + [String(decoding: raw, as: UTF8.self)]).joined(separator: "/")
                throw .invalidName(path: shown, reason: "its name is not valid UTF-8 (rename it, or exclude it with --exclude)")
            }
            let rel = relative + [name]
            if excluded(name: name, relative: rel) { continue }
            let full = dirPath + "/" + name
            var st = stat()
            guard lstat(full, &st) == 0 else { throw .unreadable(display(rel), reason: errnoText(errno)) }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                try walkDirectory(full, relative: rel, id: DirID(st))
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
            try walkDirectory(target, relative: rel, id: DirID(st))
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
