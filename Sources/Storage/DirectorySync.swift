import Hashing
import Metainfo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps a directory in step with the newest version of a site (`get` on a name): the
/// plan compares what the directory holds (the files of the version last put there) with
/// the new version, by path and content (the pieces root); applying it moves each changed
/// or new file in from a complete, verified staging copy with one rename, and deletes the
/// files the new version no longer has. Files whose content is unchanged, and anything
/// the old version did not put there, are never touched.
public enum DirectorySync {
    /// What a file of a version is, for "did it change?".
    public enum Content: Hashable, Sendable {
        case root(SHA256Digest)
        case empty

        public init(_ f: TorrentFile) {
            self = f.piecesRoot.map(Content.root) ?? .empty
        }
    }

    /// Path → content of every file of a v2 (or hybrid) torrent. Symlinks are left out: a
    /// download never makes them (their targets come from the torrent).
    public static func listing(_ m: Metainfo) -> [String: Content] {
        Dictionary(m.files.filter { !$0.isSymlink }.map { ($0.pathString, Content($0)) }, uniquingKeysWith: { a, _ in a })
    }

    public struct Plan: Sendable, Equatable {
        /// Same path, same content: left alone (not even its mtime changes).
        public var keep: [String] = []
        /// New, or changed content at the same path: moved in from staging.
        public var replace: [String] = []
        /// In the old version only: deleted.
        public var remove: [String] = []
        public init(keep: [String] = [], replace: [String] = [], remove: [String] = []) {
            self.keep = keep
            self.replace = replace
            self.remove = remove
        }
    }

    /// Pure: `old` is what the directory holds (empty when nothing is known about it),
    /// `new` the version to put there. Each list is sorted.
    public static func plan(old: [String: Content], new: [String: Content]) -> Plan {
        var plan = Plan()
        for (path, content) in new {
            if old[path] == content { plan.keep.append(path) } else { plan.replace.append(path) }
        }
        for path in old.keys where new[path] == nil { plan.remove.append(path) }
        plan.keep.sort()
        plan.replace.sort()
        plan.remove.sort()
        return plan
    }

    public struct Applied: Sendable, Equatable {
        public var replaced = 0
        public var removed = 0
        /// Replaced files that had to be copied (staging on another filesystem).
        public var copied = 0
    }

    /// Carries out `plan` in `directory`, taking new and changed files from `staging` (which
    /// holds the whole new version). Each file is linked (or copied) beside its place under
    /// a hidden temporary name and renamed over it: a reader of the directory sees the old
    /// file or the new one, never a part. A "keep" file missing from the directory is put
    /// back. Folders emptied by removals are removed unless the new version has them.
    public static func apply(_ plan: Plan, new: [String: Content], staging: String, directory: String) throws(StorageError) -> Applied {
        var applied = Applied()
        var made = Set<String>()
        for path in plan.remove {
            let at = directory + "/" + path
            var st = stat()
            guard lstat(at, &st) == 0 else { continue }
            guard (st.st_mode & S_IFMT) != S_IFDIR else { continue }
            guard unlink(at) == 0 || errno == ENOENT else { throw .writeFailed(at, reason: errnoText(errno)) }
            applied.removed += 1
        }
        pruneFolders(of: plan.remove, keeping: folders(of: new.keys), in: directory)
        var missing: [String] = []
        for path in plan.keep {
            var st = stat()
            if lstat(directory + "/" + path, &st) != 0 { missing.append(path) }
        }
        for path in (plan.replace + missing).sorted() {
            try FilePlacement.makeParents(of: path, under: directory, made: &made)
            let target = directory + "/" + path
            let slash = path.lastIndex(of: "/")
            let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
            let folder = slash.map { directory + "/" + path[..<$0] } ?? directory
            let temp = folder + "/.\(base).webseed-\(getpid())"
            unlink(temp)
            if case .empty? = new[path] {
                let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
                guard fd >= 0 else { throw .writeFailed(target, reason: errnoText(errno)) }
                close(fd)
            } else if !(try FilePlacement.linkOrCopy(staging + "/" + path, to: temp)) {
                applied.copied += 1
            }
            guard rename(temp, target) == 0 else {
                let e = errno
                unlink(temp)
                throw .writeFailed(target, reason: errnoText(e))
            }
            applied.replaced += 1
        }
        return applied
    }

    /// Every folder above a file of `paths` ("a", "a/b" for "a/b/c").
    static func folders(of paths: some Sequence<String>) -> Set<String> {
        var out = Set<String>()
        for p in paths {
            var rel = ""
            for part in p.split(separator: "/").dropLast() {
                rel += (rel.isEmpty ? "" : "/") + part
                out.insert(rel)
            }
        }
        return out
    }

    /// Removes the folders above `removed` that are now empty, deepest first, unless the new
    /// version has them (rmdir(2) leaves any folder that still holds something).
    private static func pruneFolders(of removed: [String], keeping: Set<String>, in directory: String) {
        for folder in folders(of: removed).subtracting(keeping).sorted(by: { $0.count > $1.count }) {
            rmdir(directory + "/" + folder)
        }
    }
}
