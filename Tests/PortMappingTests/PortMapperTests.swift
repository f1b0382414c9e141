import Locking
import Dispatch
import Testing
@testable import PortMapping

/// A WANIPConnection table in memory, with faults to order.
final class FakeIGD: IGDControl, @unchecked Sendable {
    struct Entry { var client: String; var internalPort: Int; var lease: Int }
    private let lock = Lock()
    var table: [String: Entry] = [:]
    var addStatus: ((Int, TransportProtocol) -> Int?)?
    var externalStatus = 0
    var calls: [String] = []
    /// Lease the router grants at most (routers may cap it).
    var leaseCap: Int?

    /// Changes what GetExternalIPAddress answers while a mapper runs: under the lock, since the
    /// mapper's queue reads it (ThreadSanitizer reported the unlocked write as a data race).
    func setExternalStatus(_ status: Int) {
        lock.withLock { externalStatus = status }
    }

    func getExternalIPAddress() -> (Int, String) {
        lock.withLock {
            calls.append("GetExternalIPAddress")
            return (externalStatus, externalStatus == 0 ? "1.2.3.4" : "")
        }
    }

    func addPortMapping(external: Int, internalPort: Int, client: String, proto: TransportProtocol, lease: Int, description: String) -> Int {
        lock.withLock {
            calls.append("AddPortMapping \(proto.rawValue) \(external) lease \(lease)")
            if let s = addStatus?(external, proto) { return s }
            let key = "\(proto.rawValue) \(external)"
            if let e = table[key], e.client != client { return 718 }
            table[key] = Entry(client: client, internalPort: internalPort, lease: leaseCap.map { min($0, lease) } ?? lease)
            return 0
        }
    }

    func getSpecificPortMappingEntry(external: Int, proto: TransportProtocol) -> (Int, String, Int, Int) {
        lock.withLock {
            guard let e = table["\(proto.rawValue) \(external)"] else { return (714, "", 0, 0) }
            return (0, e.client, e.internalPort, e.lease)
        }
    }

    func deletePortMapping(external: Int, proto: TransportProtocol) -> Int {
        lock.withLock {
            calls.append("DeletePortMapping \(proto.rawValue) \(external)")
            return table.removeValue(forKey: "\(proto.rawValue) \(external)") == nil ? 714 : 0
        }
    }
}

@Suite struct UPnPRouterPolicy {
    func router(_ igd: FakeIGD, alternates: [Int] = [40001, 40002, 40003, 40004, 40005, 40006, 40007, 40008, 40009]) -> UPnPRouter {
        let next = Locked(alternates)
        return UPnPRouter(name: "http://10.77.0.1:5555/rootDesc.xml", localAddress: "10.77.0.2", control: igd,
                          alternates: { next.withLock { $0.isEmpty ? 50000 : $0.removeFirst() } })
    }

    @Test func mapsTheSamePortWhenFree() throws {
        let igd = FakeIGD()
        let m = try router(igd).map(PortRequest(.tcp, 6881), preferredExternalPort: 6881, lease: 3600, description: "webseed TCP")
        #expect(m == Mapping(proto: .tcp, internalPort: 6881, externalPort: 6881, lease: 3600))
    }

    @Test func skipsAPortAnotherHostHoldsWithoutOverwritingIt() throws {
        let igd = FakeIGD()
        igd.table["TCP 6881"] = .init(client: "10.77.0.99", internalPort: 6881, lease: 600)
        let m = try router(igd).map(PortRequest(.tcp, 6881), preferredExternalPort: 6881, lease: 3600, description: "x")
        #expect(m.externalPort == 40001)
        #expect(igd.table["TCP 6881"]?.client == "10.77.0.99")
        #expect(!igd.calls.contains("AddPortMapping TCP 6881 lease 3600"))
    }

    @Test func movesOnWhenTheRouterSaysConflict() throws {
        let igd = FakeIGD()
        // The entry is invisible to GetSpecificPortMappingEntry (some routers), but AddPortMapping refuses.
        igd.addStatus = { port, _ in port == 6881 || port == 40001 ? 718 : nil }
        let m = try router(igd).map(PortRequest(.udp, 6881), preferredExternalPort: 6881, lease: 3600, description: "x")
        #expect(m.externalPort == 40002)
    }

    @Test func givesUpAfterAFewCandidatesWithTheRoutersError() {
        let igd = FakeIGD()
        igd.addStatus = { _, _ in 718 }
        #expect(throws: RouterError.self) {
            _ = try router(igd).map(PortRequest(.tcp, 6881), preferredExternalPort: 6881, lease: 3600, description: "x")
        }
        #expect(igd.calls.filter { $0.hasPrefix("AddPortMapping") }.count == UPnPRouter.candidates)
    }

    @Test func asksForAPermanentLeaseWhenOnlyThoseAreSupported() throws {
        let igd = FakeIGD()
        igd.addStatus = { [unowned igd] _, _ in igd.calls.last!.hasSuffix("lease 0") ? nil : 725 }
        let m = try router(igd).map(PortRequest(.tcp, 6881), preferredExternalPort: 6881, lease: 3600, description: "x")
        #expect(m.externalPort == 6881)
        #expect(m.lease == 0)
    }

    @Test func readsBackAShorterLease() throws {
        let igd = FakeIGD()
        igd.leaseCap = 120
        let m = try router(igd).map(PortRequest(.tcp, 6881), preferredExternalPort: 6881, lease: 3600, description: "x")
        #expect(m.lease == 120)
    }

    @Test func aFaultIsARefusalAndSilenceIsUnreachable() {
        let igd = FakeIGD()
        igd.addStatus = { _, _ in 501 }
        do {
            _ = try router(igd).map(PortRequest(.tcp, 6881), preferredExternalPort: 6881, lease: 3600, description: "x")
            Issue.record("mapped against a fault")
        } catch {
            #expect(!error.unreachable)
            #expect(error.description.contains("501"))
        }
        igd.addStatus = { _, _ in -3 }
        do {
            _ = try router(igd).map(PortRequest(.tcp, 6881), preferredExternalPort: 6881, lease: 3600, description: "x")
            Issue.record("mapped without an answer")
        } catch {
            #expect(error.unreachable)
        }
    }
}

/// Events of a mapper, waited for with a deadline.
final class EventTape: Sendable {
    private let events = Locked<[PortMapperEvent]>([])
    private let arrived = DispatchSemaphore(value: 0)

    func record(_ e: PortMapperEvent) {
        events.withLock { $0.append(e) }
        arrived.signal()
    }

    var all: [PortMapperEvent] { events.withLock { $0 } }

    /// Waits until `predicate` holds for the events so far (at most `seconds`).
    func wait(_ seconds: Double = 10, until predicate: ([PortMapperEvent]) -> Bool) -> Bool {
        let deadline = DispatchTime.now() + seconds
        while !predicate(all) {
            if arrived.wait(timeout: deadline) == .timedOut { return predicate(all) }
        }
        return true
    }
}

func count(_ events: [PortMapperEvent], _ kind: String) -> Int {
    events.filter {
        switch $0 {
        case .mapped: kind == "mapped"
        case .renewed: kind == "renewed"
        case .removed: kind == "removed"
        case .failed(let f): kind == f.reason.rawValue
        }
    }.count
}

@Suite struct PortMapperService {
    func configuration(lease: Int = 1) -> PortMapperConfiguration {
        var c = PortMapperConfiguration(ports: [PortRequest(.tcp, 6881), PortRequest(.udp, 6881)])
        c.lease = lease
        c.renewAt = 0.05  // renew every 50 ms with a 1 s lease
        c.minimumInterval = 0.01
        c.retryAfterNone = 0.05
        c.backoff = (0.05, 0.2)
        c.stopTimeout = 2
        return c
    }

    func finder(_ igd: FakeIGD) -> PortMapper.Finder {
        { .found(UPnPRouter(name: "http://10.77.0.1:5555/rootDesc.xml", localAddress: "10.77.0.2", control: igd)) }
    }

    @Test func mapsRenewsAndRemoves() {
        let igd = FakeIGD()
        let tape = EventTape()
        let mapper = PortMapper(configuration: configuration(), finders: [finder(igd)]) { tape.record($0) }
        mapper.start()
        #expect(mapper.waitForFirstOutcome(timeout: 10))
        #expect(tape.wait { count($0, "renewed") >= 3 })
        #expect(count(tape.all, "mapped") == 1)
        #expect(mapper.current?.externalAddress == "1.2.3.4")
        #expect(mapper.current?.externalPort(.udp) == 6881)
        #expect(mapper.stop())
        #expect(count(tape.all, "removed") == 1)
        #expect(igd.table.isEmpty)
    }

    @Test func saysNoRouterOnceWhileNoneAppears() {
        let tape = EventTape()
        let looked = DispatchSemaphore(value: 0)
        let mapper = PortMapper(configuration: configuration(), finders: [
            { looked.signal(); return .none("no UPnP device answered") },
            { .none("the gateway 10.77.0.1 does not answer NAT-PMP") },
        ]) { tape.record($0) }
        mapper.start()
        #expect(mapper.waitForFirstOutcome(timeout: 10))
        // Looking again and again (every 50 ms here) finds nothing new to say.
        for _ in 0..<4 { #expect(looked.wait(timeout: .now() + 10) == .success) }
        #expect(count(tape.all, "no_router") == 1)
        if case .failed(let f) = tape.all.first {
            #expect(f.detail.contains("NAT-PMP"))
            #expect(f.ports.count == 2)
        }
        #expect(mapper.stop())
    }

    @Test func aRouterThatGoesAwayIsLostThenFoundAgain() {
        let igd = FakeIGD()
        let tape = EventTape()
        let mapper = PortMapper(configuration: configuration(), finders: [finder(igd)]) { tape.record($0) }
        mapper.start()
        #expect(tape.wait { count($0, "mapped") == 1 })
        igd.setExternalStatus(-3)  // no answer any more
        #expect(tape.wait { count($0, "lost") == 1 })
        #expect(mapper.current == nil)
        igd.setExternalStatus(0)
        #expect(tape.wait { count($0, "mapped") == 2 })
        #expect(mapper.stop())
    }

    @Test func aRefusedPortLeavesTheOtherMapped() {
        let igd = FakeIGD()
        igd.addStatus = { _, proto in proto == .udp ? 606 : nil }
        let tape = EventTape()
        let mapper = PortMapper(configuration: configuration(lease: 3600), finders: [finder(igd)]) { tape.record($0) }
        mapper.start()
        #expect(tape.wait { count($0, "mapped") == 1 && count($0, "refused") == 1 })
        #expect(mapper.current?.mappings.map(\.proto) == [.tcp])
        #expect(mapper.stop())
    }

    @Test func stopIsBoundedWhenTheRouterHangsWhileMapping() {
        let igd = HangingIGD(hangIn: "AddPortMapping")
        let tape = EventTape()
        var c = configuration(lease: 3600)
        c.stopTimeout = 0.3
        let mapper = PortMapper(configuration: c, finders: [{ .found(UPnPRouter(name: "r", localAddress: "10.77.0.2", control: igd)) }]) { tape.record($0) }
        mapper.start()
        #expect(igd.entered.wait(timeout: .now() + 10) == .success)
        let start = DispatchTime.now().uptimeNanoseconds
        // A mapping may have been made: stop waits (boundedly) to delete it, and says it could not.
        #expect(!mapper.stop())
        #expect(DispatchTime.now().uptimeNanoseconds - start < 5_000_000_000)
        igd.release.signal()
        #expect(tape.all.isEmpty)
    }

    @Test func stopIsImmediateWhenNothingCanBeMappedYet() {
        let igd = HangingIGD(hangIn: "GetExternalIPAddress")
        let tape = EventTape()
        var c = configuration(lease: 3600)
        c.stopTimeout = 30
        let mapper = PortMapper(configuration: c, finders: [{ .found(UPnPRouter(name: "r", localAddress: "10.77.0.2", control: igd)) }]) { tape.record($0) }
        mapper.start()
        #expect(igd.entered.wait(timeout: .now() + 10) == .success)
        // Still reading the external address: nothing to delete, so stop does not wait for the router.
        let start = DispatchTime.now().uptimeNanoseconds
        #expect(mapper.stop())
        #expect(DispatchTime.now().uptimeNanoseconds - start < 5_000_000_000)
        igd.release.signal()
        #expect(tape.all.isEmpty)
    }
}

/// A router whose call `hangIn` never returns until released; every other call fails.
final class HangingIGD: IGDControl, @unchecked Sendable {
    let entered = DispatchSemaphore(value: 0)
    let release = DispatchSemaphore(value: 0)
    let hangIn: String
    init(hangIn: String) { self.hangIn = hangIn }

    private func maybeHang(_ call: String) {
        guard call == hangIn else { return }
        entered.signal()
        release.wait()
    }

    func getExternalIPAddress() -> (Int, String) {
        maybeHang("GetExternalIPAddress")
        return hangIn == "GetExternalIPAddress" ? (-3, "") : (0, "1.2.3.4")
    }
    func addPortMapping(external: Int, internalPort: Int, client: String, proto: TransportProtocol, lease: Int, description: String) -> Int {
        maybeHang("AddPortMapping")
        return -3
    }
    func getSpecificPortMappingEntry(external: Int, proto: TransportProtocol) -> (Int, String, Int, Int) { (714, "", 0, 0) }
    func deletePortMapping(external: Int, proto: TransportProtocol) -> Int { -3 }
}
