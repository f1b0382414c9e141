#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Putting a file that already exists on this host at another path without reading it
/// over the network: a hard link (free, same inode) when both paths are on one
/// filesystem, else a copy. Used to reuse unchanged files across versions of a site.
public enum FilePlacement {
    /// Places `source` (a regular file) at `target`, which must not exist; the folders
    /// above `target` must. Returns true for a hard link, false for a copy.
    @discardableResult
    public static func linkOrCopy(_ source: String, to target: String) throws(StorageError) -> Bool {
        if link(source, target) == 0 { return true }
        let linkError = errno
        // Another filesystem, or one without hard links: copy. Anything else is a failure.
        guard linkError == EXDEV || linkError == EPERM || linkError == EMLINK || linkError == ENOTSUP else {
            throw .writeFailed(target, reason: errnoText(linkError))
        }
        try copy(source, to: target)
        return false
    }

    /// Copies a regular file to `target` (created; it must not exist), then fsyncs it.
    public static func copy(_ source: String, to target: String) throws(StorageError) {
        guard let (input, st) = try openRegularFile(source, O_RDONLY) else { throw .notFound(source) }
        defer { close(input) }
        let output = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw .writeFailed(target, reason: errnoText(errno)) }
        var ok = false
        defer {
            close(output)
            if !ok { unlink(target) }
        }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var left = Int64(st.st_size)
        var at: off_t = 0
        while left > 0 {
            let n = buffer.withUnsafeMutableBytes { pread(input, $0.baseAddress, Int(min(Int64($0.count), left)), at) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw n == 0 ? .changedWhileHashing(source) : .unreadable(source, reason: errnoText(errno)) }
            var put = 0
            while put < n {
                let w = buffer.withUnsafeBytes { write(output, $0.baseAddress! + put, n - put) }
                if w < 0 && errno == EINTR { continue }
                guard w > 0 else { throw .writeFailed(target, reason: errnoText(errno)) }
                put += w
            }
            at += off_t(n)
            left -= Int64(n)
        }
        guard fsync(output) == 0 else { throw .writeFailed(target, reason: errnoText(errno)) }
        ok = true
    }

    /// Makes the folders of relative `path` under `root` (not the last component), refusing
    /// to pass through anything that is not a real folder. `made` remembers folders known
    /// to exist, so thousands of files in few folders cost few system calls.
    public static func makeParents(of path: String, under root: String, made: inout Set<String>) throws(StorageError) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        var rel = ""
        for part in parts {
            rel += (rel.isEmpty ? "" : "/") + part
            if made.contains(rel) { continue }
            let at = root + "/" + rel
            var st = stat()
            if lstat(at, &st) == 0 {
                guard (st.st_mode & S_IFMT) == S_IFDIR else { throw .writeFailed(path, reason: "\(at) is in the way and is not a folder") }
            } else if mkdir(at, 0o755) != 0 && errno != EEXIST {
                throw .writeFailed(path, reason: errnoText(errno))
            }
            made.insert(rel)
        }
    }

    /// Deletes `path` and everything under it (symlinks are removed, never followed);
    /// at most `limit` entries. What cannot be removed is left.
    public static func removeTree(_ path: String, limit: Int = 1_000_000) {
        var left = limit
        func remove(_ at: String) {
            guard left > 0 else { return }
            left -= 1
            var st = stat()
            guard lstat(at, &st) == 0 else { return }
            guard (st.st_mode & S_IFMT) == S_IFDIR else {
                unlink(at)
                return
            }
            if let dir = opendir(at) {
                var names: [String] = []
                while let entry = readdir(dir) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                        String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                    }
                    if name != "." && name != ".." { names.append(name) }
                }
                closedir(dir)
                for name in names { remove(at + "/" + name) }
            }
            rmdir(at)
        }
        remove(path)
    }
}
