import Testing
@testable import DHTProtocol

private let alice = IPAddress("198.51.100.1")!
private let bob = IPAddress("198.51.100.2")!
private let hashA = NodeID(bytes: bytes("mnopqrstuvwxyz123456"))!
private let hashB = NodeID(bytes: bytes("abcdefghij0123456789"))!

@Suite struct Tokens {
    @Test func aTokenIsBoundToTheAddressItWasGivenTo() {
        var rng = SeededGenerator(seed: 1)
        var store = TokenStore(now: 0, using: &rng)
        let t = store.token(for: alice, now: 0, using: &rng)
        #expect(t.count == TokenStore.tokenLength)
        #expect(store.token(for: alice, now: 10, using: &rng) == t)
        #expect(store.isValid(t, from: alice, now: 10, using: &rng))
        #expect(!store.isValid(t, from: bob, now: 10, using: &rng))
        #expect(store.token(for: bob, now: 10, using: &rng) != t)
        let v6 = IPAddress("2001:db8::1")!
        let t6 = store.token(for: v6, now: 10, using: &rng)
        #expect(store.isValid(t6, from: v6, now: 10, using: &rng) && !store.isValid(t6, from: alice, now: 10, using: &rng))
    }

    @Test func tokensLiveAcrossOneRotationButNotTwo() {
        var rng = SeededGenerator(seed: 2)
        var store = TokenStore(now: 0, using: &rng)
        let t = store.token(for: alice, now: 0, using: &rng)
        #expect(store.isValid(t, from: alice, now: 299, using: &rng))
        #expect(store.isValid(t, from: alice, now: 300, using: &rng))  // rotated; t is now from the previous secret
        #expect(store.token(for: alice, now: 300, using: &rng) != t)
        #expect(store.isValid(t, from: alice, now: 599, using: &rng))
        #expect(!store.isValid(t, from: alice, now: 600, using: &rng))  // rotated again
    }

    @Test func aLongSilenceRetiresBothSecrets() {
        var rng = SeededGenerator(seed: 3)
        var store = TokenStore(now: 0, using: &rng)
        let t = store.token(for: alice, now: 0, using: &rng)
        #expect(!store.isValid(t, from: alice, now: 3_600, using: &rng))
    }

    @Test func aClockThatGoesBackDoesNotRotate() {
        var rng = SeededGenerator(seed: 4)
        var store = TokenStore(now: 1_000, using: &rng)
        let t = store.token(for: alice, now: 1_000, using: &rng)
        #expect(store.isValid(t, from: alice, now: 10, using: &rng))
        #expect(store.token(for: alice, now: 10, using: &rng) == t)
    }

    @Test func malformedTokensAreRejected() {
        var rng = SeededGenerator(seed: 5)
        var store = TokenStore(now: 0, using: &rng)
        let t = store.token(for: alice, now: 0, using: &rng)
        #expect(!store.isValid([], from: alice, now: 0, using: &rng))
        #expect(!store.isValid(t + [0], from: alice, now: 0, using: &rng))
        #expect(!store.isValid(Array(t.dropLast()), from: alice, now: 0, using: &rng))
        var flipped = t
        flipped[0] ^= 1
        #expect(!store.isValid(flipped, from: alice, now: 0, using: &rng))
    }

    @Test func twoStoresDoNotShareSecrets() {
        var a = TokenStore(now: 0), b = TokenStore(now: 0)
        let t = a.token(for: alice, now: 0)
        let validForA = a.isValid(t, from: alice, now: 0), validForB = b.isValid(t, from: alice, now: 0)
        #expect(validForA && !validForB)
    }
}

@Suite struct Peers {
    private func peer(_ host: UInt32, port: UInt16 = 6881) -> Endpoint { Endpoint(ip: .v4(0xcb00_7100 + host), port: port) }

    @Test func announcedPeersAreReturnedAndRefreshedByAddress() {
        var rng = SeededGenerator(seed: 1)
        var store = PeerStore()
        #expect(store.announce(peer(1), for: hashA, now: 0) == .added)
        #expect(store.announce(peer(2), for: hashA, now: 0) == .added)
        #expect(store.announce(peer(1, port: 7000), for: hashA, now: 5) == .refreshed)
        #expect(store.count == 2 && store.infoHashCount == 1)
        #expect(Set(store.peers(for: hashA, max: 50, now: 5, using: &rng)) == [peer(1, port: 7000), peer(2)])
        #expect(store.peers(for: hashB, max: 50, now: 5, using: &rng).isEmpty)
        #expect(store.peers(for: hashA, max: 0, now: 5, using: &rng).isEmpty)
    }

    @Test func portZeroAndUnspecifiedAddressesAreRefused() {
        var store = PeerStore()
        #expect(store.announce(peer(1, port: 0), for: hashA, now: 0) == .rejected(.portZero))
        #expect(store.announce(Endpoint(ip: .v4(0), port: 1), for: hashA, now: 0) == .rejected(.unspecifiedAddress))
        #expect(store.announce(Endpoint(ip: IPAddress("::")!, port: 1), for: hashA, now: 0) == .rejected(.unspecifiedAddress))
        #expect(store.count == 0)
    }

    @Test func entriesExpireAfterThirtyMinutesFromTheirLastAnnounce() {
        var rng = SeededGenerator(seed: 2)
        var store = PeerStore()
        _ = store.announce(peer(1), for: hashA, now: 0)
        _ = store.announce(peer(2), for: hashA, now: 0)
        _ = store.announce(peer(2), for: hashA, now: 1_000)
        #expect(store.peers(for: hashA, max: 10, now: 1_799, using: &rng).count == 2)
        #expect(store.peers(for: hashA, max: 10, now: 1_800, using: &rng) == [peer(2)])
        #expect(store.counts(for: hashA, now: 1_800) == (seeds: 0, downloaders: 1))
        store.removeExpired(now: 1_800)
        #expect(store.count == 1)
        store.removeExpired(now: 2_800)
        #expect(store.count == 0 && store.infoHashCount == 0)
    }

    @Test func aFullSwarmDropsTheEntryClosestToExpiry() {
        var rng = SeededGenerator(seed: 3)
        var limits = PeerStore.Limits()
        limits.perInfoHash = 5
        var store = PeerStore(limits: limits)
        for h in 1...5 { #expect(store.announce(peer(UInt32(h)), for: hashA, now: Double(h)) == .added) }
        _ = store.announce(peer(1), for: hashA, now: 10)  // 1 is now the freshest; 2 the stalest
        #expect(store.announce(peer(6), for: hashA, now: 11) == .replacedOldest)
        #expect(Set(store.peers(for: hashA, max: 10, now: 11, using: &rng)) == Set([1, 3, 4, 5, 6].map { peer($0) }))
        #expect(store.count == 5)
        // Expired entries make room before anything live is dropped.
        // At 1,804 peers 3 and 4 have expired; 1, 5, 6 remain and 7 joins them.
        #expect(store.announce(peer(7), for: hashA, now: 1_804) == .added)
        #expect(store.count == 4)
        // Other swarms are unaffected by this one's cap.
        #expect(store.announce(peer(1), for: hashB, now: 1_804) == .added)
    }

    @Test func theTotalCapRefusesUntilSomethingExpires() {
        var limits = PeerStore.Limits()
        limits.total = 10
        var store = PeerStore(limits: limits)
        for h in 0..<10 {
            let hash = NodeID(high: UInt64(h), middle: 0, low: 0)
            #expect(store.announce(peer(1), for: hash, now: 0) == .added)
        }
        #expect(store.announce(peer(2), for: hashA, now: 1) == .rejected(.storeFull))
        #expect(store.announce(peer(1), for: NodeID(high: 3, middle: 0, low: 0), now: 2) == .refreshed)
        #expect(store.announce(peer(2), for: hashA, now: 1_801) == .added)
        #expect(store.count == 2)
    }

    @Test func aFullStoreSweepsAtMostOncePerInterval() {
        var limits = PeerStore.Limits()
        limits.total = 2
        limits.lifetime = 100
        var store = PeerStore(limits: limits)
        _ = store.announce(peer(1), for: hashA, now: 0)
        _ = store.announce(peer(2), for: hashA, now: 90)
        #expect(store.announce(peer(3), for: hashB, now: 95) == .rejected(.storeFull))  // swept at 95, nothing expired
        #expect(store.announce(peer(3), for: hashB, now: 120) == .rejected(.storeFull))  // peer 1 expired, but no sweep yet
        #expect(store.announce(peer(3), for: hashB, now: 155) == .added)
    }

    @Test func repliesAreARandomSampleOfAtMostN() {
        var store = PeerStore()
        let all = (1...100).map { peer(UInt32($0)) }
        for p in all { _ = store.announce(p, for: hashA, now: 0) }
        var rng = SeededGenerator(seed: 9)
        var seen = Set<Endpoint>()
        var firstSamples = Set<[Endpoint]>()
        for _ in 0..<100 {
            let sample = store.peers(for: hashA, max: 10, now: 1, using: &rng)
            #expect(sample.count == 10 && Set(sample).count == 10)
            #expect(Set(sample).isSubset(of: all))
            seen.formUnion(sample)
            firstSamples.insert(sample)
        }
        #expect(seen.count == 100)  // 1,000 draws miss any given peer with probability ~e^-10 per peer
        #expect(firstSamples.count == 100)
    }

    @Test func familyAndSeedFilters() {
        var rng = SeededGenerator(seed: 4)
        var store = PeerStore()
        let v6 = Endpoint(ip: IPAddress("2001:db8::5")!, port: 1)
        _ = store.announce(peer(1), for: hashA, seed: true, now: 0)
        _ = store.announce(peer(2), for: hashA, now: 0)
        _ = store.announce(v6, for: hashA, now: 0)
        #expect(Set(store.peers(for: hashA, max: 10, now: 0, family: .ipv4, using: &rng)) == [peer(1), peer(2)])
        #expect(store.peers(for: hashA, max: 10, now: 0, family: .ipv6, using: &rng) == [v6])
        #expect(Set(store.peers(for: hashA, max: 10, now: 0, excludingSeeds: true, using: &rng)) == [peer(2), v6])
        #expect(store.counts(for: hashA, now: 0) == (seeds: 1, downloaders: 2))
        // A re-announce updates the seed flag.
        _ = store.announce(peer(2), for: hashA, seed: true, now: 1)
        #expect(store.counts(for: hashA, now: 1) == (seeds: 2, downloaders: 1))
    }
}
