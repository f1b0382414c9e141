import Hashing
import Metainfo

/// `webseed create`: directory in, validated torrent out.
public enum TorrentCreator {
    public struct Request: Sendable {
        public var directory: String
        public var output: String?
        public var name: String?
        public var pieceLength: Int?
        public var hybrid = true
        public var walk = SiteWalker.Options()
        public var torrent = TorrentOptions()
        public var overwrite = false
        public var threads: Int?
        public init(directory: String) { self.directory = directory }
    }

    public struct Outcome: Sendable {
        public var metainfo: Metainfo
        public var torrentBytes: [UInt8]
        public var outputPath: String?
        public var warnings: [String]
        /// What was hashed: everything needed to seed without hashing again.
        public var hashed: [HashedFile]
    }

    /// Where the torrent goes when no -o is given: `<dir name>.torrent` beside the directory.
    public static func defaultOutput(for directory: String) -> String {
        let dir = resolvedPath(directory)
        let name = dir.split(separator: "/").last.map(String.init) ?? "site"
        return AtomicFile.parentDirectory(of: dir) + "/" + name + ".torrent"
    }

    /// Lists the directory (cheap), so that a caller can report size and choose a piece
    /// length before the expensive hashing starts.
    public static func list(_ request: Request) throws(StorageError) -> SiteWalker.Result {
        var walk = request.walk
        if let t = request.threads { walk.threads = max(1, t) }
        return try SiteWalker.walk(request.directory, options: walk)
    }

    public static func create(_ request: Request, listing: SiteWalker.Result, write: Bool = true,
                              progress: HashProgress? = nil) throws(any Error) -> Outcome {
        let output = write ? resolvedPath(request.output ?? defaultOutput(for: request.directory)) : nil
        if let output {
            let root = listing.root
            if output == root || output.hasPrefix(root == "/" ? "/" : root + "/") {
                throw StorageError.outputInsideSource(output: output, source: root)
            }
            if !request.overwrite, access(output, F_OK) == 0 { throw StorageError.outputExists(output) }
        }
        let pieceLength = request.pieceLength ?? PieceLengthRule.automatic(fileLengths: listing.files.map(\.size))
        var options = ContentHasher.Options(pieceLength: pieceLength, hybrid: request.hybrid)
        if let t = request.threads { options.threads = max(1, t) }
        let hashed = try ContentHasher.hash(listing.files, options: options, progress: progress)
        let name = request.name ?? (listing.root.split(separator: "/").last.map(String.init) ?? "site")
        let (bytes, metainfo) = try TorrentBuilder.build(name: name, pieceLength: pieceLength, files: hashed,
                                                         hybrid: request.hybrid, options: request.torrent)
        if let output { try AtomicFile.write(bytes, to: output, overwrite: request.overwrite) }
        return Outcome(metainfo: metainfo, torrentBytes: bytes, outputPath: output, warnings: listing.warnings, hashed: hashed)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
