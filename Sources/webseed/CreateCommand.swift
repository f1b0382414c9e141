import ArgumentParser
import FoundationEssentials
import Metainfo
import Storage
import WebseedKit

struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Package a site directory into a BitTorrent v2 torrent (hybrid v1+v2 by default) and print its magnet link.",
        discussion: """
        The same directory always gives the same info hash: files go into the torrent in \
        BEP 52 file-tree order, and nothing that depends on time, user or machine goes into \
        the info dictionary. Version-control folders and OS clutter (.git, .svn, .DS_Store, \
        Thumbs.db, ...) are left out unless --no-default-excludes is given; other dotfiles, \
        such as .well-known/, are part of the site and are kept.
        """
    )

    @Argument(help: "The site directory to package.")
    var directory: String

    @Option(name: .shortAndLong, help: "Where to write the torrent (default: <directory name>.torrent beside the directory, never inside it).")
    var output: String?

    @Flag(name: .customLong("v2-only"), help: "Write a pure BEP 52 v2 torrent. The default hybrid also lets v1-only clients (Transmission, aria2) join.")
    var v2Only = false

    @Option(name: .customLong("piece-length"), help: ArgumentHelp(
        "Piece length: a power of two from 16K to 256M, or 'auto'.",
        discussion: "auto picks the smallest power of two from 16 KiB to 16 MiB that keeps the piece count at or below max(1500, 2 × files). Every file starts a new piece, so small pieces waste little padding on a web bundle's many small files; the cap keeps metadata small for large files.",
        valueName: "size"))
    var pieceLength: String = "auto"

    @Option(help: "Name of the torrent (default: the directory's name).")
    var name: String?

    @Option(help: "A comment stored in the torrent (outside the hashed info).")
    var comment: String?

    @Option(name: .customLong("tracker"), help: "Tracker announce URL; repeat for more (each is its own tier).")
    var trackers: [String] = []

    @Option(name: .customLong("web-seed"), help: "Web seed URL (BEP 19 url-list); repeat for more. End it with '/'.")
    var webSeeds: [String] = []

    @Flag(name: .customLong("private"), help: "Mark the torrent private (BEP 27: trackers only, no DHT or PEX).")
    var isPrivate = false

    @Option(name: .customLong("exclude"), help: "Leave out files or folders matching this glob; repeatable. Without '/', matches a name at any depth; with '/', the path from the site root.")
    var excludes: [String] = []

    @Flag(name: .customLong("no-default-excludes"), help: "Keep version-control folders and OS clutter too.")
    var noDefaultExcludes = false

    @Flag(name: .customLong("follow-symlinks"), help: "Follow symlinks that stay inside the directory (others are skipped with a warning).")
    var followSymlinks = false

    @Flag(name: .customLong("creation-date"), help: "Record the current time as 'creation date' (outside the hashed info).")
    var creationDate = false

    @Flag(help: "Overwrite the output file if it exists.")
    var force = false

    @Option(help: "Threads listing and hashing the directory (default: one per core).")
    var threads: Int?

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        try reportingErrors {
            var request = TorrentCreator.Request(directory: directory)
            request.output = output
            request.hybrid = !v2Only
            request.overwrite = force
            request.threads = threads
            if pieceLength != "auto" {
                guard let pl = parseByteSize(pieceLength), pl >= 16384, pl <= 256 << 20, pl & (pl - 1) == 0 else {
                    throw ValidationFailure("invalid --piece-length '\(pieceLength)': use a power of two from 16K to 256M, or auto")
                }
                request.pieceLength = pl
            }
            if let name {
                guard case .ok = PathRules.check(Array(name.utf8)) else {
                    throw ValidationFailure("invalid --name '\(name)': it must be a plain file name (no '/', not '.' or '..')")
                }
                request.name = name
            }
            if let threads, threads < 1 { throw ValidationFailure("--threads must be at least 1") }
            request.walk.excludes = excludes
            request.walk.useDefaultExcludes = !noDefaultExcludes
            request.walk.followSymlinks = followSymlinks
            request.torrent.trackers = trackers
            request.torrent.webSeeds = webSeeds
            request.torrent.comment = comment
            request.torrent.isPrivate = isPrivate
            request.torrent.createdBy = "webseed \(webseedVersion)"
            if creationDate { request.torrent.creationDate = Int64(Date().timeIntervalSince1970) }

            let listing = try TorrentCreator.list(request)
            for w in listing.warnings { printError("warning: \(w)") }
            let total = listing.files.reduce(Int64(0)) { $0 + $1.size }
            let progress = HashProgress(totalBytes: total)
            let bar = ProgressBar(progress, label: "hashing")
            bar.start()
            let outcome: TorrentCreator.Outcome
            do {
                outcome = try TorrentCreator.create(request, listing: listing, progress: progress)
            } catch {
                bar.stop()
                throw error
            }
            bar.stop()
            let m = outcome.metainfo
            if json {
                var o = m.jsonSummary
                o["torrent"] = JSON(outcome.outputPath)
                printJSON(o)
            } else {
                print("packaged \(visible(listing.root))")
                print("  torrent       \(visible(outcome.outputPath ?? "-"))")
                print("  name          \(visible(m.name))")
                print("  files         \(m.files.count) (\(formatBytes(m.totalSize)), \(m.totalSize) bytes)")
                print("  piece length  \(formatBytes(Int64(m.pieceLength))) (\(m.pieceCount) pieces)")
                print("  format        \(m.version == .hybrid ? "hybrid v1+v2" : "v2 only")")
                print("  v2 info hash  \(m.v2InfoHash!.hex)")
                if let v1 = m.v1InfoHash { print("  v1 info hash  \(v1.hex)") }
                print("  site id       \(m.siteID!)")
                print("  magnet        \(MagnetLink(metainfo: m).uri)")
            }
        }
    }
}
