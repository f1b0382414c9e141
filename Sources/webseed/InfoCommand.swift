import ArgumentParser
import FoundationEssentials
import Metainfo
import Names
import Signing
import Storage
import WebseedKit

struct Info: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show what a torrent file, a magnet link or a site name holds.",
        discussion: """
        A site name (k-… or magnet:?xs=urn:btpk:…) is resolved through the DHT: a node is \
        started on --listen, the highest valid signed item is read from several nodes, and its \
        seq, site id, BEP 46 ih, v2 info hash and the torrent's magnet are printed. The DHT \
        options apply only to names.
        """
    )

    @Argument(help: "A .torrent file, a magnet link, or a site name.")
    var source: String

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @OptionGroup var dht: DHTOptions

    @Flag(help: offlineHelp)
    var offline = false

    @Option(help: "With a name: the DHT node's UDP address, HOST:PORT (default 0.0.0.0:0, any port).")
    var listen: String = "0.0.0.0:0"

    @Option(name: .customLong("state-dir"), help: "With a name: where the DHT node's id and known nodes are kept (default: ~/.local/share/webseed).")
    var stateDir: String?

    @Option(help: "With a name: give up when no DHT node has its item after this many seconds (default 30).")
    var timeout: Double = 30

    func run() async throws {
        if let name = SiteName.parse(source) {
            try await reportingErrors { try await resolve(name) }
            return
        }
        try reportingErrors {
            if source.lowercased().hasPrefix("magnet:") {
                let magnet = try MagnetLink(parsing: source)
                if json {
                    printJSON([
                        "v2_infohash": JSON(magnet.v2InfoHash?.hex),
                        "v1_infohash": JSON(magnet.v1InfoHash?.hex),
                        "site_id": JSON(magnet.v2InfoHash.map(SiteID.encode)),
                        "name": JSON(magnet.displayName),
                        "trackers": JSON(magnet.trackers), "web_seeds": JSON(magnet.webSeeds), "peers": JSON(magnet.peers),
                    ])
                } else {
                    print("magnet link")
                    if let n = magnet.displayName { print("  name          \(visible(n))") }
                    if let v2 = magnet.v2InfoHash { print("  v2 info hash  \(v2.hex)\n  site id       \(SiteID.encode(v2))") }
                    if let v1 = magnet.v1InfoHash { print("  v1 info hash  \(v1.hex)") }
                    for t in magnet.trackers { print("  tracker       \(visible(t))") }
                    for w in magnet.webSeeds { print("  web seed      \(visible(w))") }
                    for p in magnet.peers { print("  peer          \(visible(p))") }
                    print("  (files are known once the metadata is fetched from peers)")
                }
                return
            }
            let m = try readTorrent(source)
            for p in m.sanitizedPaths { printError("warning: unsafe characters in '\(p)' were replaced with '_'") }
            if json {
                var o = m.jsonSummary
                o["files"] = .array(m.files.map { f in
                    .object(["path": .string(f.pathString), "length": .number(f.length), "pieces_root": JSON(f.piecesRoot?.hex)])
                })
                o["trackers"] = JSON(m.trackers.flatMap { $0 })
                o["web_seeds"] = JSON(m.webSeeds)
                o["comment"] = JSON(m.comment)
                o["created_by"] = JSON(m.createdBy)
                o["creation_date"] = JSON(m.creationDate)
                printJSON(o)
                return
            }
            let format = switch m.version { case .v1: "v1"; case .v2: "v2 only"; case .hybrid: "hybrid v1+v2" }
            print("torrent \(visible(source))")
            print("  name          \(visible(m.name))")
            print("  format        \(format)\(m.isPrivate ? ", private" : "")")
            if let v2 = m.v2InfoHash { print("  v2 info hash  \(v2.hex)\n  site id       \(SiteID.encode(v2))") }
            if let v1 = m.v1InfoHash { print("  v1 info hash  \(v1.hex)") }
            print("  size          \(formatBytes(m.totalSize)) (\(m.totalSize) bytes) in \(m.files.count) files")
            print("  piece length  \(formatBytes(Int64(m.pieceLength))) (\(m.pieceCount) pieces)")
            for tier in m.trackers { print("  tracker       \(visible(tier.joined(separator: " ")))") }
            for w in m.webSeeds { print("  web seed      \(visible(w))") }
            if let c = m.comment { print("  comment       \(visible(c))") }
            if let c = m.createdBy { print("  created by    \(visible(c))") }
            if let d = m.creationDate { print("  created       \(creationDateText(d))") }
            print("  magnet        \(visible(MagnetLink(metainfo: m).uri))")
            print("  files:")
            let width = String(m.files.map(\.length).max() ?? 0).count
            for f in m.files {
                let size = String(f.length)
                let pad = String(repeating: " ", count: max(0, width - size.count))
                let root = f.piecesRoot?.hex ?? (f.isSymlink ? "symlink -> \(visible(f.symlinkTarget!.joined(separator: "/")))" : "-")
                print("    \(pad)\(size)  \(root)  \(visible(f.pathString))")
            }
        }
    }

    /// A name: resolved on a DHT node of this process (see NameInfo.swift in WebseedKit).
    private func resolve(_ name: (key: Ed25519PublicKey, salt: [UInt8])) async throws {
        guard let settings = try dht.settings() else { throw ValidationFailure("a site name is resolved through the DHT; drop --no-dht") }
        guard timeout > 0, timeout <= 3600 else { throw ValidationFailure("--timeout must be between 0 and 3600 seconds") }
        let (host, port) = try parseHostPort(listen, option: "--listen")
        var fetch = EngineConfiguration.Fetch(magnet: nil, metainfo: nil)
        fetch.name = name
        fetch.infoOnly = true
        fetch.timeout = timeout
        var configuration = EngineConfiguration(listen: .init(host: host, port: port, text: listen), stateDirectory: stateDir ?? defaultStateDirectory())
        configuration.fetch = fetch
        configuration.dht = settings
        configuration.offline = offline
        configuration.json = json
        try await Engine(configuration).run()
    }
}
