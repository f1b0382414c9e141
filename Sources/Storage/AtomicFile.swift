import Locking

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a file so that readers see either the old content or the whole new content:
/// a temporary file beside the target, fsync, then rename over it (or, without
/// `overwrite`, a rename that fails if the target appeared meanwhile).
public enum AtomicFile {
    public static func write(_ bytes: [UInt8], to path: String, overwrite: Bool) throws(StorageError) {
        if !overwrite && access(path, F_OK) == 0 { throw .outputExists(path) }
        let dir = parentDirectory(of: path)
        let base = path.split(separator: "/").last.map(String.init) ?? path
        let temp = dir + "/." + base + ".tmp-\(getpid())-\(nextTemporaryNumber())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .writeFailed(path, reason: errnoText(errno)) }
        var ok = false
        defer { if !ok { unlink(temp) } }
        var written = 0
        let result: Int32 = bytes.withUnsafeBytes { raw in
            while written < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                written += n
            }
            return fsync(fd) == 0 ? 0 : errno
        }
        let closeFailed = close(fd) != 0
        guard result == 0 else { throw .writeFailed(path, reason: errnoText(result)) }
        guard !closeFailed else { throw .writeFailed(path, reason: errnoText(errno)) }
        if overwrite {
            guard rename(temp, path) == 0 else { throw .writeFailed(path, reason: errnoText(errno)) }
        } else {
            // link(2) fails with EEXIST if the target appeared meanwhile: never clobbers.
            guard link(temp, path) == 0 else {
                if errno == EEXIST { throw .outputExists(path) }
                throw .writeFailed(path, reason: errnoText(errno))
            }
            unlink(temp)
        }
        ok = true
    }

    /// Two threads of one process writing the same file each get their own temporary file.
    private static let counter = Locked(0)
    private static func nextTemporaryNumber() -> Int { counter.withLock { $0 += 1; return $0 } }

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

/// Absolute, normalised form of a path that may not exist yet: the deepest existing
/// ancestor is resolved with realpath (symlinks included), the rest appended.
public func resolvedPath(_ path: String) -> String {
    let absolute: String
    if path.hasPrefix("/") {
        absolute = path
    } else {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let cwd = getcwd(&buf, buf.count).map { String(cString: $0) } ?? "."
        absolute = cwd + "/" + path
    }
    var parts: [String] = []
    for c in absolute.split(separator: "/") {
        if c == "." { continue }
        if c == ".." { _ = parts.popLast(); continue }
        parts.append(String(c))
    }
    var tail: [String] = []
    while true {
        let candidate = "/" + parts.joined(separator: "/")
        if let r = realpath(candidate, nil) {
            let resolved = String(cString: r)
            free(r)
            let joined = ([resolved == "/" ? "" : resolved] + tail.reversed()).joined(separator: "/")
            return joined.isEmpty ? "/" : joined
        }
        guard let last = parts.popLast() else { return absolute }
        tail.append(last)
    }
}
