import Foundation
import Gateway
import Storage
import Swarm

/// A scratch directory packaged and checked as `seed` does on start.
final class LocalSite {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("webseed-gateway-sources-\(UUID().uuidString)")
    let torrent: SeedTorrent

    init(_ files: [String: [UInt8]]) throws {
        for (path, data) in files {
            let u = dir.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: u.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(data).write(to: u)
        }
        let request = TorrentCreator.Request(directory: dir.path)
        let listing = try TorrentCreator.list(request)
        let metainfo = try TorrentCreator.create(request, listing: listing, write: false).metainfo
        let data = LocalDataVerifier.verify(metainfo, directory: listing.root, resumePath: nil)
        torrent = SeedTorrent(metainfo: metainfo, directory: listing.root, data: data)
    }

    deinit { try? FileManager.default.removeItem(at: dir) }

    func file(_ path: String) -> Int { torrent.metainfo.files.firstIndex { $0.pathString == path }! }

    /// One byte changed in place, size kept (as an editor saving over the file would).
    func flip(_ path: String, at offset: UInt64) throws {
        let handle = try FileHandle(forUpdating: dir.appendingPathComponent(path))
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        let old = try handle.read(upToCount: 1)![0]
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: [old ^ 0xff])
    }
}

func collect(_ chunks: VerifiedChunks) async throws -> [UInt8] {
    var out: [UInt8] = []
    for try await chunk in chunks { out += Array(buffer: chunk) }
    return out
}

func bytes(_ seed: UInt8, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) } }
