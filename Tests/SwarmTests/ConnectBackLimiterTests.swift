import Testing
@testable import Swarm

/// The uTP connect-back's limits, with a hand-driven clock.
@Suite struct ConnectBackLimiterTests {
    @Test func tenClientsFromOneAddressEachGetAConnectBack() {
        var l = ConnectBackLimiter()
        for k in 0..<10 {
            // One after another, each on its own port (or the same port) with its own connection id.
            let allowed = l.allow(address: "127.0.0.1", port: 6881, connectionID: UInt16(100 + k), now: 10 + 0.6 * Double(k))
            #expect(allowed, "client \(k + 1)")
        }
        let repeated = l.allow(address: "127.0.0.1", port: 6881, connectionID: 109, now: 16)
        #expect(!repeated, "a repeated SYN is a retransmission")
        let later = l.allow(address: "127.0.0.1", port: 6881, connectionID: 109, now: 16 + l.repeatWindow)
        #expect(later)
    }

    @Test func oneAddressGetsABurstThenOneEveryInterval() {
        var l = ConnectBackLimiter()
        let burst = Int(l.perAddressBurst)
        // Forged SYNs naming one victim and many ports: the burst, then nothing.
        var allowed = 0
        for port in 1000..<1100 where l.allow(address: "203.0.113.9", port: port, connectionID: 1, now: 50) { allowed += 1 }
        #expect(allowed == burst)
        // Over the next minute, one per interval.
        var later = 0
        for s in stride(from: 50.5, through: 110, by: 0.5) {
            for port in 2000..<2010 where l.allow(address: "203.0.113.9", port: port, connectionID: UInt16(s * 2), now: s) { later += 1 }
        }
        #expect(later == Int(60 / l.perAddressInterval))
        let other = l.allow(address: "198.51.100.1", port: 1, connectionID: 1, now: 110)
        #expect(other, "other addresses have their own bucket")
    }

    @Test func allAddressesTogetherAreBoundedPerSecondAndTheStateStaysSmall() {
        var l = ConnectBackLimiter()
        var allowed = 0
        for k in 0..<1000 where l.allow(address: "10.0.\(k / 250).\(k % 250)", port: 7000, connectionID: 9, now: 5) { allowed += 1 }
        #expect(allowed == l.globalPerSecond)
        // A flood from forged addresses for ten minutes: state only for what got a connect-back.
        var total = 0
        for t in 0..<6000 {
            let now = 6 + Double(t) / 10
            for k in 0..<20 where l.allow(address: "10.\(t % 200).\(k).\(t / 200)", port: 7000 + k, connectionID: 1, now: now) { total += 1 }
            #expect(l.entries <= 1_500)
        }
        #expect(total <= 600 * (l.globalPerSecond + 1))
    }
}
