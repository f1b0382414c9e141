import Storage

#if canImport(Glibc)
import Glibc
#endif

/// When a watched directory has changed and settled (`seed --watch`). Pure: each look at
/// the directory's listing goes in with `now`; out comes the listing to package once it
/// has stayed the same for `quiet` seconds and differs from the one last packaged. An
/// editor saving several files, or a copy in progress, is thus packaged once, whole.
///
/// The directory is watched by listing it (paths, sizes, mtimes: the walk `create` does)
/// every half second rather than with inotify: one walk sees exactly what would be
/// packaged (ignore rules included), needs no watch per subdirectory, has no queue to
/// overflow and no race with directories made between events, and costs a few
/// milliseconds for thousands of files.
struct Debouncer<Value: Equatable & Sendable>: Sendable {
    let quiet: Double
    /// After a packaging failed (a file vanished while it was read), wait this long.
    var failureBackoff: Double = 10
    /// What was last packaged.
    private(set) var settled: Value
    private var latest: Value
    private var changedAt: Double

    init(settled: Value, quiet: Double = 1, now: Double) {
        self.quiet = quiet
        self.settled = settled
        latest = settled
        changedAt = now
    }

    /// One look at the directory. Returns the listing to package now, or nil.
    mutating func observe(_ value: Value, now: Double) -> Value? {
        if value != latest {
            latest = value
            changedAt = now
        }
        guard latest != settled, now - changedAt >= quiet else { return nil }
        // Until `packaged` or `failed` is called, not handed out again.
        changedAt = .infinity
        return latest
    }

    /// The version was packaged from `value` (the listing it was made from, which may be
    /// newer than the one `observe` handed out: a later change is then seen as usual).
    mutating func packaged(_ value: Value, now: Double) {
        settled = value
        // A change seen while packaging keeps its time; otherwise nothing is pending.
        if latest != value, changedAt == .infinity { changedAt = now }
    }

    /// Packaging failed: tried again after `failureBackoff` seconds (sooner if the directory changes).
    mutating func failed(now: Double) {
        changedAt = now + failureBackoff - quiet
    }
}

/// What a watched directory's listing is compared by: each file's path, size and mtime.
struct ListingFingerprint: Equatable, Sendable {
    let files: [Entry]
    struct Entry: Equatable, Sendable {
        let path: String
        let size: Int64
        let modified: FileTime?
    }

    init(_ files: [SiteFile]) {
        self.files = files.map { Entry(path: $0.pathString, size: $0.size, modified: $0.modified) }
    }
}

/// A version's own copy of a site directory made of hard links, so it keeps serving what
/// it was packaged from while the directory changes: a file replaced by rename (how most
/// editors, rsync and git save), removed or moved keeps its old bytes in the snapshot. An
/// edit in place changes the shared file, which the seeder then detects and withdraws from
/// the old version. Links cost no space beyond the directory entries.
enum Snapshot {
    /// Links every listed file under `destination` (made anew). Returns why not when links
    /// cannot be made there (another filesystem: EXDEV; a filesystem without hard links),
    /// and throws when a file vanished meanwhile (the directory is changing: try later);
    /// leaves nothing behind either way.
    static func make(_ files: [SiteFile], into destination: String) throws -> String? {
        remove(destination)
        guard mkdir(destination, 0o700) == 0 else { return "cannot create \(destination): \(errnoText(errno))" }
        var made = Set<String>()
        for f in files {
            var dir = destination
            for part in f.path.dropLast() {
                dir += "/" + part
                if made.insert(dir).inserted, mkdir(dir, 0o700) != 0, errno != EEXIST {
                    return fail(destination, "cannot create \(dir): \(errnoText(errno))")
                }
            }
            if link(f.absolutePath, destination + "/" + f.pathString) != 0 {
                if errno == ENOENT {
                    remove(destination)
                    throw ValidationFailure("\(f.absolutePath) vanished while the snapshot was made")
                }
                return fail(destination, "cannot link \(f.pathString) into \(destination): \(errnoText(errno))")
            }
        }
        return nil
    }

    /// Removes a snapshot directory and everything under it (never following symlinks).
    static func remove(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if st.st_mode & S_IFMT == S_IFDIR {
            if let d = opendir(path) {
                var names: [String] = []
                while let e = readdir(d) {
                    let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
                    if name != ".", name != ".." { names.append(name) }
                }
                closedir(d)
                for n in names { remove(path + "/" + n) }
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    private static func fail(_ destination: String, _ why: String) -> String {
        remove(destination)
        return why
    }

    private static func errnoText(_ code: Int32) -> String { String(cString: strerror(code)).lowercased() }
}
