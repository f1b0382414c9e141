import Locking
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Whoever follows names for a gateway (WebseedKit's `NameResolver`, a fake in tests): told
/// once when a name is first asked for, and whenever a request found a path missing from
/// the version served (a newer version may have it).
public protocol NameFollower: Sendable {
    /// Start following `name` (canonical `k-…`) and report its versions to `names`.
    func follow(_ name: String, in names: GatewayNames)
    /// A request missed in `name`'s version, or waits for its first one: look again soon.
    func miss(_ name: String)
    /// Stop following `name` (it never resolved, and the table needed its place).
    func unfollow(_ name: String)
}

/// The names a gateway serves: for each `k-…` name, the site of its current version, as
/// the follower last verified it. A request reads its name's version once, at its start,
/// so one response never mixes versions; the follower switches the version between
/// requests. Safe to use from any thread.
public final class GatewayNames: Sendable {
    public struct Version: Sendable, Equatable {
        public let siteID: String
        public let seq: Int64
        /// The signed BEP 44 item of this version, bencoded (`k`, `salt`, `seq`, `sig`, `v`):
        /// what verified mode's worker checks against the key in the address (nil: not known).
        public let item: [UInt8]?
        public init(siteID: String, seq: Int64, item: [UInt8]? = nil) {
            self.siteID = siteID
            self.seq = seq
            self.item = item
        }

        /// One version is one site at one seq; its item is the proof of that, not part of it.
        public static func == (a: Version, b: Version) -> Bool { a.siteID == b.siteID && a.seq == b.seq }
    }

    /// Why the follower last did not use an item (`NameRefusal`'s code and text).
    public struct Refusal: Sendable, Equatable {
        public let code: String
        public let reason: String
        public init(code: String, reason: String) {
            self.code = code
            self.reason = reason
        }
    }

    /// A name as the status page shows it. Times are wall-clock seconds since 1970.
    public struct Status: Sendable {
        public let name: String
        public let version: Version?
        /// When a lookup last found the name's item in the DHT (used or refused).
        public let resolvedAt: Double?
        public let refusal: (Refusal, at: Double)?
    }

    /// Why a request for a name gets no site.
    public enum Unavailable: Error, Equatable, CustomStringConvertible {
        case tooManyNames(Int)
        /// No version verified within the request's wait; the follower's last refusal, if any.
        case notResolved(name: String, seconds: Int, last: Refusal?)

        public var description: String {
            switch self {
            case .tooManyNames(let n): "this gateway already follows \(n) names"
            case .notResolved(let name, let seconds, let last):
                "\(name) did not resolve to a site within \(seconds) s" + (last.map { ": \($0.reason)" } ?? "")
            }
        }
    }

    /// Anyone can name a key in a URL: the names followed are bounded. When the table is
    /// full, a name that never resolved and that no request waits for makes room.
    public static let maxNames = 64

    private struct Entry {
        var version: Version?
        var resolvedAt: Double?
        var refusal: (Refusal, at: Double)?
        var waiters: [Int: CheckedContinuation<Version?, Never>] = [:]
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var order: [String] = []
        var nextWaiter = 0
        /// Waiters not registered yet, and those of them whose deadline already passed.
        var unregistered: Set<Int> = []
        var expired: Set<Int> = []
    }

    private let state = Locked(State())
    private let follower: any NameFollower

    public init(follower: any NameFollower) {
        self.follower = follower
    }

    /// Follows `name` (a name given on the command line, or a request's): true when it is
    /// followed, already or from now on; false when the table is full.
    @discardableResult
    public func add(_ name: String) -> Bool {
        let outcome = state.withLock { s -> (new: Bool, evicted: String?)? in
            if s.entries[name] != nil { return (false, nil) }
            var evicted: String?
            if s.entries.count >= Self.maxNames {
                guard let i = s.order.firstIndex(where: { s.entries[$0]?.version == nil && s.entries[$0]?.waiters.isEmpty == true }) else {
                    return nil
                }
                evicted = s.order.remove(at: i)
                s.entries[evicted!] = nil
            }
            s.entries[name] = Entry()
            s.order.append(name)
            return (true, evicted)
        }
        if let evicted = outcome?.evicted { follower.unfollow(evicted) }
        if outcome?.new == true { follower.follow(name, in: self) }
        return outcome != nil
    }

    /// The version `name` serves now. A name not served yet is followed (when there is
    /// room) and waited for until `deadline`; a served one answers at once.
    public func version(of name: String, deadline: NIODeadline) async -> Result<Version, Unavailable> {
        if let v = current(name) { return .success(v) }
        guard add(name) else { return .failure(.tooManyNames(Self.maxNames)) }
        follower.miss(name)
        let start = NIODeadline.now()
        if let v = await wait(name, until: deadline) { return .success(v) }
        let seconds = Int(((NIODeadline.now() - start).nanoseconds + 500_000_000) / 1_000_000_000)
        return .failure(.notResolved(name: name, seconds: seconds, last: state.withLock { $0.entries[name]?.refusal?.0 }))
    }

    /// The version served, without waiting.
    public func current(_ name: String) -> Version? { state.withLock { $0.entries[name]?.version } }

    /// A request found no such path in `name`'s version: the follower may look again.
    public func miss(_ name: String) { follower.miss(name) }

    // MARK: what the follower reports

    /// `name` now serves `version` (verified against its item); requests from now on get it.
    public func serve(_ name: String, _ version: Version) {
        let waiters = state.withLock { s -> [CheckedContinuation<Version?, Never>] in
            guard var e = s.entries[name] else { return [] }
            e.version = version
            e.resolvedAt = wallClock()
            let w = Array(e.waiters.values)
            e.waiters = [:]
            s.entries[name] = e
            return w
        }
        for w in waiters { w.resume(returning: version) }
    }

    /// A lookup found the name's item (the version served stays, or a switch follows).
    public func resolved(_ name: String) {
        state.withLock { $0.entries[name]?.resolvedAt = wallClock() }
    }

    /// An item or its torrent was refused; the version served stays.
    public func refused(_ name: String, _ refusal: Refusal) {
        state.withLock { $0.entries[name]?.refusal = (refusal, wallClock()) }
    }

    /// Every name followed, in the order first asked for.
    public var statuses: [Status] {
        state.withLock { s in
            s.order.compactMap { n in s.entries[n].map { Status(name: n, version: $0.version, resolvedAt: $0.resolvedAt, refusal: $0.refusal) } }
        }
    }

    public var count: Int { state.withLock { $0.entries.count } }

    // MARK: waiting for a first version

    private func wait(_ name: String, until deadline: NIODeadline) async -> Version? {
        let id = state.withLock { s in
            s.nextWaiter += 1
            s.unregistered.insert(s.nextWaiter)
            return s.nextWaiter
        }
        let timer = Task { [self] in
            guard (try? await Task.sleep(for: .nanoseconds(max(0, (deadline - .now()).nanoseconds)))) != nil else { return }
            expire(name, id)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { (c: CheckedContinuation<Version?, Never>) in
            let answer = state.withLock { s -> Version?? in
                s.unregistered.remove(id)
                if s.expired.remove(id) != nil { return .some(nil) }
                if let v = s.entries[name]?.version { return .some(v) }
                if s.entries[name] == nil { return .some(nil) }
                s.entries[name]!.waiters[id] = c
                return .none
            }
            if let answer { c.resume(returning: answer) }
        }
    }

    private func expire(_ name: String, _ id: Int) {
        let waiter = state.withLock { s -> CheckedContinuation<Version?, Never>? in
            if let w = s.entries[name]?.waiters.removeValue(forKey: id) { return w }
            if s.unregistered.contains(id) { s.expired.insert(id) }
            return nil
        }
        waiter?.resume(returning: nil)
    }
}

/// Seconds since 1970 (for "last resolved" on the status page).
func wallClock() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
