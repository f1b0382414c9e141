import Foundation
import Metainfo
import NIOCore
import Storage
@testable import Swarm

/// Waits until `condition` holds, at most `timeout` seconds, without holding a thread: tests
/// run on Swift's cooperative pool (two threads on a 2-core machine), and tests that block one
/// while others do too stall every other async test in the run (seen under ThreadSanitizer:
/// the pool stalled for 30 s).
func waitFor(_ timeout: Double, _ condition: () -> Bool) async -> Bool {
    let end = ContinuousClock.now + .milliseconds(Int64(timeout * 1000))
    while ContinuousClock.now < end {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// A scratch site, packaged and verified: what a seeder would serve.
final class Fixture {
    let dir: URL
    let torrent: SeedTorrent
    var metainfo: Metainfo { torrent.metainfo }

    init(files: [String: [UInt8]], hybrid: Bool = true, pieceLength: Int = 16_384, isPrivate: Bool = false) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("webseed-swarm-\(UUID().uuidString)")
        for (path, bytes) in files {
            let u = dir.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: u.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(bytes).write(to: u)
        }
        var request = TorrentCreator.Request(directory: dir.path)
        request.hybrid = hybrid
        request.pieceLength = pieceLength
        request.torrent.isPrivate = isPrivate
        let listing = try TorrentCreator.list(request)
        let outcome = try TorrentCreator.create(request, listing: listing, write: false)
        // Verified as `seed` does on start, so file generations are known and reads take
        // the fast path while files are unchanged.
        let data = LocalDataVerifier.verify(outcome.metainfo, directory: listing.root, resumePath: nil)
        precondition(data.pieces.isFull && !data.generations.isEmpty)
        torrent = SeedTorrent(metainfo: outcome.metainfo, directory: listing.root, data: data)
    }

    deinit { try? FileManager.default.removeItem(at: dir) }

    func bytes(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: dir.appendingPathComponent(path).path)!) }
}

func content(_ seed: UInt8, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) } }

/// Blocking forms for synchronous tests: the futures complete on the seeder's event loop,
/// never on the thread that waits for them.
extension Seeder {
    func listen(host: String, port: Int) throws -> SocketAddress {
        try listenFuture(host: host, port: port).wait().address
    }

    func shutdown() {
        try? stopFuture().wait()
    }
}
