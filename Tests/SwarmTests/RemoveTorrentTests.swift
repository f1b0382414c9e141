import Foundation
import NIOCore
import Testing
@testable import Swarm

/// `Seeder.remove`: what `seed --watch` does to a replaced version once its grace period is over.
@Suite(.serialized) struct RemoveTorrentTests {
    @Test func aRemovedTorrentsConnectionsCloseAndItsHashIsRefusedWhileTheOtherStaysServed() async throws {
        let old = try Fixture(files: ["index.html": content(1, 30_000)])
        let new = try Fixture(files: ["index.html": content(2, 30_000)])
        let seeder = Seeder()
        defer { seeder.shutdown() }
        seeder.add(old.torrent)
        seeder.add(new.torrent)
        let port = try seeder.listen(host: "127.0.0.1", port: 0).port!
        let oldHash = Array(old.metainfo.v2InfoHash!.bytes.prefix(20))
        let newHash = Array(new.metainfo.v2InfoHash!.bytes.prefix(20))

        let visitor = try FakePeer(port: port)
        visitor.send(FakePeer.handshake(oldHash))
        #expect(visitor.receive(68).map { Array($0[28..<48]) } == oldHash)
        let other = try FakePeer(port: port)
        other.send(FakePeer.handshake(newHash))
        #expect(other.receive(68).map { Array($0[28..<48]) } == newHash)

        await seeder.remove(old.torrent)

        #expect(visitor.closedBySeeder())
        let late = try FakePeer(port: port)
        late.send(FakePeer.handshake(oldHash))
        #expect(late.receive(68) == nil)
        #expect(other.message()?.0 == 14)  // still served: have all
    }

    @Test func removingAVersionAlsoAddedAgainKeepsTheNewerOne() async throws {
        // Two SeedTorrents of one torrent (an edit undone within the grace period): removing
        // the older leaves the hash served by the newer.
        let files = ["index.html": content(3, 20_000)]
        let first = try Fixture(files: files)
        let again = try Fixture(files: files)
        let seeder = Seeder()
        defer { seeder.shutdown() }
        seeder.add(first.torrent)
        seeder.add(again.torrent)
        let port = try seeder.listen(host: "127.0.0.1", port: 0).port!
        await seeder.remove(first.torrent)
        let hash = Array(again.metainfo.v2InfoHash!.bytes.prefix(20))
        let peer = try FakePeer(port: port)
        peer.send(FakePeer.handshake(hash))
        #expect(peer.receive(68).map { Array($0[28..<48]) } == hash)
    }
}
