import Foundation
import Gateway
import Metainfo
import NIOCore
import Swarm
import Testing
@testable import WebseedKit

/// The adapter for sites fetched on demand, over a real swarm on loopback: a range asked for
/// arrives verified, and a range no peer has ends in `.timedOut` at the deadline.
@Suite final class FetchedSiteTests {
    let source: LocalSite
    let big = bytes(7, 600_000)
    let work = FileManager.default.temporaryDirectory.appendingPathComponent("webseed-gateway-fetch-\(UUID().uuidString)")
    let fetcher = Seeder()

    init() throws {
        source = try LocalSite(["index.html": bytes(6, 1000), "media/big.bin": big])
    }

    deinit { try? FileManager.default.removeItem(at: work) }

    func fetch() throws -> FetchedSite {
        let state = work.appendingPathComponent("state").path
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let options = FetchOptions(directory: work.appendingPathComponent("out").path, defaultParent: work.path, stateDirectory: state)
        return FetchedSite(handle: fetcher.fetch(magnet: nil, metainfo: source.torrent.metainfo, options: options) { _ in })
    }

    @Test func aRangeAskedForArrivesVerified() async throws {
        let seeder = Seeder()
        seeder.add(source.torrent)
        let port = try await seeder.listen(on: "127.0.0.1", port: 0).address.port!
        let site = try fetch()
        fetcher.connect(host: "127.0.0.1", port: port, for: site.handle)
        let deadline = NIODeadline.now() + .seconds(20)
        #expect(try await site.ready(deadline: deadline).name == source.torrent.metainfo.name)
        let file = source.file("media/big.bin")
        #expect(try await collect(site.bytes(file: file, range: 400_000..<450_000, deadline: deadline)) == Array(big[400_000..<450_000]))
        #expect(site.stats.total == source.torrent.metainfo.totalSize)
        await seeder.stop()
        await fetcher.stop()
    }

    @Test func withoutPeersTheWaitEndsAtTheDeadline() async throws {
        let site = try fetch()
        _ = try await site.ready(deadline: .now() + .seconds(20))
        var chunks = site.bytes(file: source.file("index.html"), range: 0..<1000, deadline: .now() + .milliseconds(300)).makeAsyncIterator()
        await #expect(throws: SiteContentError.timedOut) { _ = try await chunks.next() }
        await fetcher.stop()
    }
}
