import Bencode
import Signing
import Testing
@testable import DHTProtocol

private func item(_ key: Ed25519PrivateKey, _ seq: Int64, _ text: String, salt: String = "") throws -> MutableItem {
    try MutableItem(signing: .string(text), seq: seq, salt: bytes(salt), with: key)
}

@Suite struct ItemStoreTests {
    let key: Ed25519PrivateKey

    init() throws { key = try Ed25519PrivateKey.generate() }

    @Test func storesAndAnswersBothKinds() throws {
        var store = ItemStore()
        let immutable = try ImmutableItem(value: .string("Hello World!"))
        #expect(store.put(immutable, now: 0) == .added)
        #expect(store.item(immutable.target, now: 1) == .immutable(immutable))
        let m = try item(key, 1, "one")
        #expect(try store.put(m, now: 0) == .added)
        #expect(store.item(m.target, now: 1) == .mutable(m))
        #expect(store.count == 2)
    }

    @Test func aHigherSeqReplacesAndTheSameItemRefreshes() throws {
        var store = ItemStore()
        let one = try item(key, 1, "one")
        _ = try store.put(one, now: 0)
        #expect(try store.put(one, now: 10) == .refreshed)
        let two = try item(key, 2, "two")
        #expect(try store.put(two, now: 20) == .replaced)
        #expect(store.item(two.target, now: 21) == .mutable(two))
        #expect(store.count == 1)
    }

    @Test func aLowerSeqIsRefusedAndChangesNothing() throws {
        var store = ItemStore()
        let five = try item(key, 5, "five")
        _ = try store.put(five, now: 0)
        #expect(throws: DHTItemError.sequenceNotNewer(seq: 4, stored: 5)) { try store.put(try item(key, 4, "four"), now: 1) }
        #expect(store.item(five.target, now: 2) == .mutable(five))
    }

    @Test func anEqualSeqWithAnotherValueIsRefused() throws {
        var store = ItemStore()
        let five = try item(key, 5, "five")
        _ = try store.put(five, now: 0)
        #expect(throws: DHTItemError.sequenceNotNewer(seq: 5, stored: 5)) { try store.put(try item(key, 5, "other"), now: 1) }
        #expect(store.item(five.target, now: 2) == .mutable(five))
    }

    @Test func casMustNameTheStoredSeq() throws {
        var store = ItemStore()
        _ = try store.put(try item(key, 5, "five"), now: 0)
        #expect(throws: DHTItemError.casMismatch(expected: 4, stored: 5)) { try store.put(try item(key, 6, "six"), cas: 4, now: 1) }
        let six = try item(key, 6, "six")
        #expect(try store.put(six, cas: 5, now: 2) == .replaced)
        #expect(store.item(six.target, now: 3) == .mutable(six))
    }

    @Test func saltsAreSeparateSlots() throws {
        var store = ItemStore()
        let a = try item(key, 1, "a", salt: "a")
        let b = try item(key, 1, "b", salt: "b")
        _ = try store.put(a, now: 0)
        _ = try store.put(b, now: 0)
        #expect(store.item(a.target, now: 1) == .mutable(a))
        #expect(store.item(b.target, now: 1) == .mutable(b))
    }

    @Test func itemsExpireTwoHoursAfterTheirLastPut() throws {
        var store = ItemStore()
        let one = try item(key, 1, "one")
        _ = try store.put(one, now: 0)
        _ = try store.put(one, now: 3_600)  // republished after an hour
        #expect(store.item(one.target, now: 3_600 + 7_199) != nil)
        #expect(store.item(one.target, now: 3_600 + 7_200) == nil)
        // An expired item is no obstacle to a lower seq.
        let zero = try item(key, 0, "zero")
        #expect(try store.put(zero, now: 3_600 + 7_200) == .added)
        store.removeExpired(now: 100_000)
        #expect(store.count == 0 && store.bytes == 0)
    }

    @Test func atTheItemCapTheLeastRecentlyPutMakesRoom() throws {
        var limits = ItemStore.Limits()
        limits.maxItems = 3
        var store = ItemStore(limits: limits)
        let items = try (0..<3).map { try ImmutableItem(value: .integer(Int64($0))) }
        for (i, it) in items.enumerated() { _ = store.put(it, now: Double(i)) }
        _ = store.put(items[0], now: 10)  // item 0 is fresh again; item 1 is now the oldest
        let newcomer = try ImmutableItem(value: .integer(99))
        #expect(store.put(newcomer, now: 11) == .addedEvicting(1))
        #expect(store.count == 3)
        #expect(store.item(items[1].target, now: 12) == nil)
        #expect(store.item(items[0].target, now: 12) != nil && store.item(newcomer.target, now: 12) != nil)
    }

    @Test func oneAddressChurnsOnlyItsOwnShare() throws {
        var limits = ItemStore.Limits()
        limits.maxItemsPerAddress = 3
        var store = ItemStore(limits: limits)
        let honest = IPAddress("10.0.0.1")!, flooder = IPAddress("10.0.0.2")!
        let kept = try (0..<2).map { try ImmutableItem(value: .integer(1_000 + Int64($0))) }
        for it in kept { _ = store.put(it, from: honest, now: 0) }
        let flood = try (0..<50).map { try ImmutableItem(value: .integer(Int64($0))) }
        for (i, it) in flood.enumerated() { _ = store.put(it, from: flooder, now: Double(1 + i)) }
        #expect(store.count == 5)  // the flooder's last three, and both honest items
        for it in kept { #expect(store.item(it.target, now: 60) != nil) }
        #expect(store.item(flood[46].target, now: 60) == nil && store.item(flood[49].target, now: 60) != nil)
        // The flooder refreshing an honest item does not make it the flooder's to evict.
        _ = store.put(kept[0], from: flooder, now: 61)
        _ = store.put(try ImmutableItem(value: .integer(77)), from: flooder, now: 62)
        #expect(store.item(kept[0].target, now: 63) != nil)
    }

    @Test func atTheByteCapOldItemsMakeRoom() throws {
        var limits = ItemStore.Limits()
        limits.maxBytes = 2_500
        var store = ItemStore(limits: limits)
        let big = (0..<3).map { i in BValue.bytes([UInt8](repeating: UInt8(i), count: 990)) }
        let items = try big.map { try ImmutableItem(value: $0) }
        #expect(store.put(items[0], now: 0) == .added)
        #expect(store.put(items[1], now: 1) == .added)
        #expect(store.put(items[2], now: 2) == .addedEvicting(1))
        #expect(store.bytes <= 2_500)
        #expect(store.item(items[0].target, now: 3) == nil)
        // A mutable item is charged its key, signature and salt too.
        var small = ItemStore(limits: { var l = ItemStore.Limits(); l.maxBytes = 2_000; return l }())
        let m = try item(key, 1, "x", salt: "salt")
        _ = try small.put(m, now: 0)
        #expect(small.bytes == m.encodedValue.count + 4 + 32 + 64)
    }

    @Test func aFloodOfItemsNeverPassesTheCaps() throws {
        var limits = ItemStore.Limits()
        limits.maxItems = 50
        limits.maxBytes = 20_000
        var store = ItemStore(limits: limits)
        for i in 0..<2_000 {
            _ = store.put(try ImmutableItem(value: .bytes([UInt8](repeating: UInt8(i & 0xff), count: i % 900) + [UInt8(i >> 8)])), now: Double(i))
            #expect(store.count <= 50 && store.bytes <= 20_000)
        }
    }
}
