import Foundation
import NIOCore
import Testing
@testable import Swarm

private func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }

/// Issue 16, finding 2: one address cannot take every peer slot, and what connections hold
/// of unfinished messages is bounded over all of them.
@Suite(.serialized) struct ConnectionLimits {
    let fixture: Fixture
    init() throws { fixture = try Fixture(files: ["index.html": content(3, 50_000)]) }
    var hash: [UInt8] { Array(fixture.metainfo.v2InfoHash!.bytes.prefix(20)) }

    @Test func oneAddressGetsOnlyItsShareOfThePeerSlots() throws {
        var config = SeederConfiguration()
        config.maxPeers = 250
        let seeder = Seeder(configuration: config)
        defer { seeder.shutdown() }
        seeder.add(fixture.torrent)
        let port = try seeder.listen(host: "127.0.0.1", port: 0).port!
        var answered: [FakePeer] = []
        for _ in 0..<200 {
            let peer = try FakePeer(port: port)
            peer.send(FakePeer.handshake(hash))
            if peer.receive(68) != nil { answered.append(peer) }  // the refused are closed unanswered
        }
        #expect(answered.count == config.maxPeersPerAddress)
        for peer in answered { #expect(peer.message()?.0 == 14) }  // still served
    }

    @Test func almostCompleteMessagesStayWithinTheSharedBudget() async throws {
        var config = SeederConfiguration()
        config.receiveBudget = 4 << 20
        config.maxPeersPerAddress = 100
        let seeder = Seeder(configuration: config)
        defer { seeder.shutdown() }
        seeder.add(fixture.torrent)
        let port = try seeder.listen(host: "127.0.0.1", port: 0).port!
        // 1 MiB announced (the largest message allowed), all but the last 100 bytes sent.
        let length = 1 << 20
        let partial = be32(UInt32(length)) + [20, 9] + [UInt8](repeating: 0x61, count: length - 102)
        var peers: [FakePeer] = []
        for _ in 0..<16 {
            let peer = try FakePeer(port: port)
            peer.send(FakePeer.handshake(hash) + partial)
            peers.append(peer)
        }
        // 16 × ~0.94 MiB does not fit in 4 MiB: all but 4 are refused (and closed).
        let refusedAtLeast = 16 - config.receiveBudget / (length - config.receiveAllowance)
        var budget = (charged: 0, peak: 0, refusals: 0)
        for _ in 0..<50 {
            budget = try await seeder.loop.submit { [core = seeder.core] in
                let b = core.value.receiveBudget
                return (charged: b.charged, peak: b.peak, refusals: b.refusals)
            }.get()
            if budget.refusals >= refusedAtLeast { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(budget.peak <= config.receiveBudget)
        #expect(budget.charged <= config.receiveBudget)
        #expect(budget.refusals >= refusedAtLeast)
        // Still serving: a new peer is answered.
        let probe = try FakePeer(port: port)
        probe.send(FakePeer.handshake(hash))
        #expect(probe.receive(68) != nil)
    }

    @Test func theBudgetChargesWhatIsHeldBeyondTheAllowanceAndFreesItAtTheEnd() {
        let budget = ReceiveBudget(limit: 100, allowance: 10)
        let a = ReceiveBudget.Account(), b = ReceiveBudget.Account()
        #expect(budget.hold(50, in: a) && budget.charged == 40)
        #expect(!budget.hold(80, in: b) && budget.charged == 40 && budget.refusals == 1)
        #expect(budget.hold(10, in: b))            // within the allowance: free
        #expect(budget.hold(20, in: a) && budget.charged == 10)  // shrinking always fits
        budget.release(a)
        #expect(budget.charged == 0 && budget.peak == 40)
        #expect(budget.hold(1000, in: a) && budget.charged == 0)  // a gone connection charges nothing
    }
}
