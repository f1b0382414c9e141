import Hashing
import Metainfo

/// A torrent's files as a web server sees them: paths to file indices, and folders with
/// their entries for listings.
public struct SiteIndex: Sendable {
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var isFolder: Bool
        public var size: Int64
    }

    let files: [String: Int]
    /// Per file (index into the metainfo's files): its strong ETag (the pieces root) and type.
    let etags: [String]
    let contentTypes: [String]
    /// Folder path ("" for the root) → its entries, sorted by name.
    let folders: [String: [Entry]]
    /// The lengths of the v1 side's BEP 47 pad files (each named `.pad/<length>`).
    let padLengths: Set<Int64>

    public init(_ m: Metainfo) {
        var files: [String: Int] = [:]
        var folders: [String: [String: Entry]] = ["": [:]]
        for (i, f) in m.files.enumerated() where !f.isSymlink {
            let path = f.pathString
            files[path] = i
            var parent = ""
            for (depth, part) in f.path.enumerated() {
                let isLast = depth == f.path.count - 1
                folders[parent, default: [:]][part] = Entry(name: part, isFolder: !isLast, size: isLast ? f.length : 0)
                parent = parent.isEmpty ? part : parent + "/" + part
                if !isLast && folders[parent] == nil { folders[parent] = [:] }
            }
        }
        self.files = files
        let empty = "\"" + Digests.sha256([UInt8]()).hex + "\""
        etags = m.files.map { f in f.piecesRoot.map { "\"" + $0.hex + "\"" } ?? empty }
        contentTypes = m.files.map { MIME.type(forPath: $0.pathString) }
        self.folders = folders.mapValues { $0.values.sorted { $0.name < $1.name } }
        padLengths = Set(m.v1Entries.lazy.filter(\.isPad).map(\.length))
    }

    public func file(_ path: String) -> Int? { files[path] }
    public func folder(_ path: String) -> [Entry]? { folders[path] }
}

extension SiteIndex {
    /// What a path inside the site names.
    enum Match: Equatable {
        /// A file to send; `found` false: the site's own 404 page, sent with 404.
        case file(Int, found: Bool)
        case listing(folder: String, [Entry])
        /// A folder named without its trailing "/": moved to this relative location.
        case folderSlash(String)
        case notFound
    }

    /// `segments` as `SitePath` decodes them (a trailing "" for a path ending in "/").
    /// `spa`: a missing path without an extension is the single-page app's `index.html`.
    func match(_ segments: [String], query: String?, spa: Bool) -> Match {
        let path = segments.filter { !$0.isEmpty }.joined(separator: "/")
        if segments.last == "" {
            if let i = file(path.isEmpty ? "index.html" : path + "/index.html") { return .file(i, found: true) }
            if let entries = folder(path) { return .listing(folder: path, entries) }
        } else if let i = file(path) {
            return .file(i, found: true)
        } else if folder(path) != nil {
            return .folderSlash((segments.last.map(SitePath.encode) ?? "") + "/" + RequestRouter.suffix(query))
        }
        if spa, !(segments.last ?? "").contains("."), let i = file("index.html") { return .file(i, found: true) }
        if let i = file("404.html") { return .file(i, found: false) }
        return .notFound
    }
}
