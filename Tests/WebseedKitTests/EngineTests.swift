import Foundation
import Metainfo
import Storage
import Swarm
import Testing
@testable import WebseedKit

/// The engine run end to end on loopback, as the commands run it.
@Suite struct EngineTests {
    private static func scratch() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("webseed-engine-\(UUID().uuidString)")
    }

    @Test func getFetchesFromAPeerAndEndsWhenDone() async throws {
        let work = Self.scratch()
        defer { try? FileManager.default.removeItem(at: work) }
        let site = work.appendingPathComponent("site")
        let files: [String: [UInt8]] = ["index.html": Array(repeating: 7, count: 40_000), "js/app.js": (0..<70_000).map { UInt8(truncatingIfNeeded: $0) }]
        for (path, bytes) in files {
            let url = site.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(bytes).write(to: url)
        }
        let request = TorrentCreator.Request(directory: site.path)
        let listing = try TorrentCreator.list(request)
        let metainfo = try TorrentCreator.create(request, listing: listing, write: false).metainfo
        let data = LocalDataVerifier.verify(metainfo, directory: listing.root, resumePath: nil)
        let seeder = Seeder()
        seeder.add(SeedTorrent(metainfo: metainfo, directory: listing.root, data: data))
        let port = try #require(try await seeder.listen(on: "127.0.0.1", port: 0).address.port)

        let out = work.appendingPathComponent("out").path
        var configuration = EngineConfiguration(listen: .init(host: "127.0.0.1", port: 0, text: "127.0.0.1:0"),
                                                stateDirectory: work.appendingPathComponent("state").path)
        var fetch = EngineConfiguration.Fetch(magnet: MagnetLink(v2InfoHash: metainfo.v2InfoHash), metainfo: nil)
        fetch.output = out
        fetch.exitWhenDone = true
        fetch.timeout = 30  // a stuck download fails the test instead of hanging it
        configuration.fetch = fetch
        configuration.peers = [(host: "127.0.0.1", port: port)]
        configuration.offline = true
        configuration.json = true
        let notify = try NotifySocket()
        try await Engine(configuration).run(notifying: SystemdNotifier(socketPath: notify.path))
        await seeder.stop()
        #expect(notify.receive()?.hasPrefix("READY=1\nSTATUS=downloading; peers on port ") == true)
        #expect(notify.receive() == "STOPPING=1", "the download done, the engine stops by itself")

        for (path, bytes) in files {
            #expect(FileManager.default.contents(atPath: out + "/" + path).map { [UInt8]($0) } == bytes, "\(path)")
        }
    }

    @Test func aMissingSiteIsTheCommandsError() async throws {
        let work = Self.scratch()
        defer { try? FileManager.default.removeItem(at: work) }
        var configuration = EngineConfiguration(listen: .init(host: "127.0.0.1", port: 0, text: "127.0.0.1:0"), stateDirectory: work.path)
        configuration.seed = .init(sources: [work.appendingPathComponent("nowhere").path], createdBy: "test")
        configuration.offline = true
        configuration.json = true
        let notify = try NotifySocket()
        await #expect {
            try await Engine(configuration).run(notifying: SystemdNotifier(socketPath: notify.path))
        } throws: { error in
            (error as? ValidationFailure)?.description.hasSuffix("nowhere: no such file or directory") == true
        }
        #expect(notify.receive() == "STOPPING=1", "never ready: a site was not verified")
    }
}
