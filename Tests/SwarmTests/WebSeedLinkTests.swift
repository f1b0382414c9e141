import Foundation
import Locking
import Metainfo
import NIOCore
import PeerWire
import Storage
import Testing
@testable import Swarm

/// A download from web seeds only, through `WebSeedLink` and a real `Fetch`: a transport that
/// serves a fixture's files from memory, and one that flips a byte of every answer.
@Suite struct WebSeedLinkTests {
    /// Serves `http://HOST/<torrent name>/<path>` from the fixture; `liar` flips the first byte.
    struct FakeTransport: WebSeedTransport {
        let files: [String: [UInt8]]
        let name: String
        func mayFetch(_ url: String) -> Bool { true }
        func get(_ url: String, range: Range<Int64>, on loop: any EventLoop,
                 events: NIOLoopBound<(WebSeedResponseEvent) -> Void>) -> @Sendable () -> Void {
            let liar = url.hasPrefix("http://liar/")
            let prefix = (liar ? "http://liar/" : "http://good/") + name + "/"
            let bytes = url.hasPrefix(prefix) ? files[String(url.dropFirst(prefix.count))] : nil
            loop.execute {
                guard let bytes else { return events.value(.head(status: 404, location: nil)) }
                var part = Array(bytes[Int(range.lowerBound)..<Int(range.upperBound)])
                if liar { part[0] ^= 0xFF }
                events.value(.head(status: 206, location: nil))
                events.value(.body(ByteBuffer(bytes: part)))
                events.value(.end(error: nil))
            }
            return {}
        }
    }


    @Test func aDownloadFromWebSeedsIsByteIdenticalAndALiarIsDropped() async throws {
        let files = ["index.html": content(1, 70_000), "css/site.css": content(2, 3_000), "img/big.png": content(3, 300_000)]
        let source = try Fixture(files: files)
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("webseed-ws-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        let out = work.appendingPathComponent("out").path
        let options = FetchOptions(directory: out, defaultParent: work.path, stateDirectory: work.appendingPathComponent("state").path)
        try FileManager.default.createDirectory(atPath: options.stateDirectory, withIntermediateDirectories: true)
        let events = EventBox()
        let fetcher = Seeder()
        defer { fetcher.shutdown() }
        let handle = fetcher.fetch(magnet: nil, metainfo: source.metainfo, options: options) { events.add($0) }
        let transport = FakeTransport(files: files, name: source.metainfo.name)
        // The liar alone first: it is asked for everything, and every piece it sends fails.
        handle.addWebSeeds(["http://liar/"], transport: transport)
        #expect(await waitFor(20) { events.all.contains { if case .webSeedDropped = $0 { true } else { false } } })
        #expect(!handle.progress.complete)
        handle.addWebSeeds(["http://good/"], transport: transport)
        #expect(await waitFor(20) { handle.progress.complete })
        for (path, bytes) in files {
            let same = FileManager.default.contents(atPath: out + "/" + path).map { [UInt8]($0) } == bytes
            #expect(same, "\(path)")
        }
        let dropped = events.all.compactMap { e -> String? in if case .webSeedDropped(let url, let why, nil) = e { url + " " + why } else { nil } }
        #expect(dropped.count == 1 && dropped.first?.hasPrefix("http://liar/ banned: piece ") == true, "\(dropped)")
        let banned = events.all.compactMap { e -> String? in if case .peerBanned(let address, _) = e { address } else { nil } }
        #expect(banned == ["http://liar/"])
    }

    /// Fails its first `failures` GETs as a refused connection would, or answers them with
    /// `status`; serves every later one.
    final class FlakyTransport: WebSeedTransport {
        let inner: FakeTransport
        let status: Int?
        private let failures: Locked<Int>
        init(_ inner: FakeTransport, failures: Int, status: Int? = nil) {
            self.inner = inner
            self.failures = Locked(failures)
            self.status = status
        }
        func mayFetch(_ url: String) -> Bool { true }
        func get(_ url: String, range: Range<Int64>, on loop: any EventLoop,
                 events: NIOLoopBound<(WebSeedResponseEvent) -> Void>) -> @Sendable () -> Void {
            let fail = failures.withLock { $0 -= 1; return $0 >= 0 }
            guard fail else { return inner.get(url, range: range, on: loop, events: events) }
            loop.execute { [status] in
                if let status { events.value(.head(status: status, location: nil)) } else { events.value(.end(error: "connection refused")) }
            }
            return {}
        }
    }

    func download(_ files: [String: [UInt8]], transport: (Metainfo) -> any WebSeedTransport,
                  until: (FetchHandle, EventBox) -> Bool) async throws -> (events: EventBox, complete: Bool) {
        let source = try Fixture(files: files)
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("webseed-ws-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        var options = FetchOptions(directory: work.appendingPathComponent("out").path, defaultParent: work.path,
                                   stateDirectory: work.appendingPathComponent("state").path)
        options.webSeedRetry = 0.1
        try FileManager.default.createDirectory(atPath: options.stateDirectory, withIntermediateDirectories: true)
        let events = EventBox()
        let fetcher = Seeder()
        defer { fetcher.shutdown() }
        let handle = fetcher.fetch(magnet: nil, metainfo: source.metainfo, options: options) { events.add($0) }
        handle.addWebSeeds(["http://good/"], transport: transport(source.metainfo))
        _ = await waitFor(20) { until(handle, events) }
        return (events, handle.progress.complete)
    }

    func drops(_ events: EventBox) -> [(reason: String, retryIn: Double?)] {
        events.all.compactMap { if case .webSeedDropped(_, let why, let retry) = $0 { (why, retry) } else { nil } }
    }

    @Test func aWebSeedThatFailsForAWhileIsTriedAgainLaterEachTimeTwiceAsLate() async throws {
        // One small file: one GET per attempt, so each failure is one drop.
        let files = ["index.html": content(4, 3_000)]
        let (events, complete) = try await download(files, transport: { m in
            FlakyTransport(FakeTransport(files: files, name: m.name), failures: 3)
        }, until: { handle, _ in handle.progress.complete })
        #expect(complete)
        let seen = drops(events)
        #expect(seen.map(\.reason) == ["connection refused", "connection refused", "connection refused"])
        #expect(seen.map(\.retryIn) == [0.1, 0.2, 0.4])
    }

    @Test func aServerErrorIsTriedAgainAndANotFoundIsNot() async throws {
        let files = ["index.html": content(5, 3_000)]
        let (busy, busyComplete) = try await download(files, transport: { m in
            FlakyTransport(FakeTransport(files: files, name: m.name), failures: 1, status: 503)
        }, until: { handle, _ in handle.progress.complete })
        #expect(busyComplete)
        #expect(drops(busy).map(\.retryIn) == [0.1])
        let (missing, missingComplete) = try await download(files, transport: { m in
            FlakyTransport(FakeTransport(files: files, name: m.name), failures: 1, status: 404)
        }, until: { _, events in !self.drops(events).isEmpty })
        #expect(!missingComplete)
        let seen = drops(missing)
        #expect(seen.count == 1 && seen.first?.retryIn == nil, "\(seen)")
    }
}
