import Foundation
import Testing
@testable import Swarm

#if canImport(Glibc)
import Glibc
#endif

private func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }

/// Issue 16, finding 1: connections that send a fatal message and `interested` in one write
/// must not keep upload slots. Before the fix, 12 of them held all 8 slots and the honest
/// peer waited for several 10 s rotations.
@Suite(.serialized) struct ChokerLeak {
    @Test func fatalMessagesFollowedByInterestedHoldNoSlot() throws {
        let fixture = try Fixture(files: ["index.html": content(3, 50_000)])
        let seeder = Seeder(configuration: SeederConfiguration())  // 8 slots, rotation every 10 s
        defer { seeder.shutdown() }
        seeder.add(fixture.torrent)
        let port = try seeder.listen(host: "127.0.0.1", port: 0).port!
        let hash = Array(fixture.metainfo.v2InfoHash!.bytes.prefix(20))
        let interested = be32(1) + [2]
        let unsolicitedPiece = be32(13) + [7] + be32(0) + be32(0) + [1, 2, 3, 4]
        let haveAll = be32(1) + [14]
        for i in 0..<12 {
            let bad = try FakePeer(port: port)
            // Each in one write: the handshake, the fatal message, then `interested`.
            if i % 2 == 0 {
                bad.send(FakePeer.handshake(hash) + unsolicitedPiece + interested)
            } else {
                bad.send(FakePeer.handshake(hash, fast: false) + haveAll + interested)
            }
            #expect(bad.closedBySeeder(), "bad peer \(i)")
        }
        let honest = try FakePeer(port: port)
        honest.send(FakePeer.handshake(hash))
        #expect(honest.receive(68) != nil)
        #expect(honest.message()?.0 == 14)  // have all
        #expect(honest.message()?.0 == 20)  // extension handshake
        honest.send(interested)
        #expect(honest.message()?.0 == 1, "unchoked at once (within the 5 s receive timeout)")
    }
}
