import Locking
import Dispatch
import Synchronization

public struct PortMapperConfiguration: Sendable {
    /// The ports to make reachable (peer TCP, DHT UDP).
    public var ports: [PortRequest]
    /// Lease asked of the router, seconds (0 asks for a permanent mapping).
    public var lease = 3600
    /// Shown in the router's table.
    public var description = "webseed"
    /// Renew when this share of the granted lease has passed.
    public var renewAt = 0.5
    /// Never renew more often than this, seconds.
    public var minimumInterval = 2.0
    /// Renew at least this often whatever the lease, seconds: a router that restarted and
    /// forgot its mappings gets them back within this long (a renewal is one SOAP call).
    public var maximumInterval = 300.0
    /// After no router was found, or one refused, look again after this long, seconds.
    public var retryAfterNone = 300.0
    /// After a router stopped answering: first retry, doubling up to the maximum, seconds.
    public var backoff = (first: 30.0, maximum: 600.0)
    /// How long `stop` waits for the router to confirm the deletions, seconds.
    public var stopTimeout = 5.0

    public init(ports: [PortRequest]) { self.ports = ports }
}

public struct PortMappingFailure: Sendable, Equatable {
    public enum Reason: String, Sendable {
        /// No UPnP or NAT-PMP router answered.
        case noRouter = "no_router"
        /// A router answered but refused (or failed) the mapping.
        case refused
        /// A router was found but gave no usable answer to its control calls.
        case noAnswer = "no_answer"
        /// A router that had mapped the ports stopped answering.
        case lost
    }
    public var reason: Reason
    public var method: PortMappingMethod?
    public var router: String?
    /// What was seen, for the user ("718 ConflictInMappingEntry", "no UPnP device answered").
    public var detail: String
    /// The ports left unmapped by this failure.
    public var ports: [PortRequest]
}

public enum PortMapperEvent: Sendable {
    /// Mapped for the first time, or the external address or a port changed.
    case mapped(MappedState)
    case renewed(MappedState)
    case failed(PortMappingFailure)
    /// Deleted from the router at shutdown.
    case removed(MappedState)
}

/// Keeps this host's ports mapped on the local router for as long as it runs: finds a
/// router (UPnP IGD first, then NAT-PMP), maps, renews before the lease runs out, finds
/// the router again when it goes away, deletes the mappings on `stop`.
///
/// Every router call blocks; they all run on this mapper's own serial queue, so nothing
/// here ever waits on an event loop, and `stop` waits a bounded time however stuck a
/// router is.
public final class PortMapper: @unchecked Sendable {
    public typealias Finder = @Sendable () -> Discovery

    private let configuration: PortMapperConfiguration
    private let finders: [Finder]
    private let onEvent: @Sendable (PortMapperEvent) -> Void
    private let queue = DispatchQueue(label: "webseed.port-mapping")

    // Touched only on `queue`.
    private var router: (any MappingRouter)?
    private var lastFailure: PortMappingFailure?
    private var backoff: Double

    private let stopping = Atomic(false)
    private let silenced = Atomic(false)
    /// What the router holds for us: written on `queue`, read by `current` from anywhere.
    private let mapped = Locked<MappedState?>(nil)
    private let firstOutcome = DispatchSemaphore(value: 0)
    private let hadOutcome = Atomic(false)
    /// Set before the first mapping request goes out: from then on the router may hold
    /// mappings of ours, and `stop` must wait for their deletion. Before it (discovery,
    /// reading the external address) there is nothing to delete and `stop` returns at once.
    private let mayHoldMappings = Atomic(false)

    /// The default finders: UPnP IGD discovery, then NAT-PMP to the default gateway.
    public static let standardFinders: [Finder] = [
        { UPnPLibrary.discover(delayMs: 1000) },
        { NATPMPRouter.discover(timeoutMs: 2000) },
    ]

    public init(configuration: PortMapperConfiguration, finders: [Finder] = PortMapper.standardFinders,
                onEvent: @escaping @Sendable (PortMapperEvent) -> Void) {
        self.configuration = configuration
        self.finders = finders
        self.onEvent = onEvent
        backoff = configuration.backoff.first
    }

    /// What is mapped now (nil when nothing is).
    public var current: MappedState? { mapped.withLock { $0 } }

    public func start() {
        queue.async { self.cycle() }
    }

    /// Waits until the first attempt has an outcome (mapped or failed), at most `timeout`
    /// seconds, or until `interruptWait`. True if it had one.
    public func waitForFirstOutcome(timeout: Double) -> Bool {
        if hadOutcome.load(ordering: .acquiring) { return true }
        if firstOutcome.wait(timeout: .now() + timeout) == .success { firstOutcome.signal() }
        return hadOutcome.load(ordering: .acquiring)
    }

    /// Ends a `waitForFirstOutcome` early (shutdown during start-up).
    public func interruptWait() { firstOutcome.signal() }

    /// Deletes the mappings (waiting at most the configured time for the router) and stops.
    /// Returns true when the router confirmed it, or nothing was mapped.
    @discardableResult
    public func stop() -> Bool {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return true }
        let done = DispatchSemaphore(value: 0)
        let confirmed = Atomic(true)
        queue.async {
            if let state = self.current, let router = self.router {
                var problems: [String] = []
                for m in state.mappings {
                    do { try router.unmap(m) } catch { problems.append("\(m.proto.rawValue) \(m.externalPort): \(error)") }
                }
                if problems.isEmpty {
                    self.emit(.removed(state))
                } else {
                    confirmed.store(false, ordering: .relaxed)
                    self.emit(.failed(PortMappingFailure(reason: .lost, method: router.method, router: router.name,
                                                         detail: "could not delete " + problems.joined(separator: "; "),
                                                         ports: state.mappings.map { PortRequest($0.proto, $0.internalPort) })))
                }
            }
            self.mapped.withLock { $0 = nil }
            self.router = nil
            done.signal()
        }
        guard mayHoldMappings.load(ordering: .acquiring) else {
            silenced.store(true, ordering: .releasing)
            return true
        }
        let finished = done.wait(timeout: .now() + configuration.stopTimeout) == .success
        // A router call still stuck past the timeout may finish later: say nothing more then.
        silenced.store(true, ordering: .releasing)
        return finished && confirmed.load(ordering: .relaxed)
    }

    private var isStopping: Bool { stopping.load(ordering: .acquiring) }

    private func emit(_ event: PortMapperEvent) {
        guard !silenced.load(ordering: .acquiring) else { return }
        onEvent(event)
        if !hadOutcome.exchange(true, ordering: .acquiringAndReleasing) { firstOutcome.signal() }
    }

    private func schedule(after seconds: Double) {
        guard !isStopping else { return }
        queue.asyncAfter(deadline: .now() + max(0, seconds)) { [weak self] in self?.cycle() }
    }

    /// Reports a failure unless it repeats the previous one word for word.
    private func fail(_ failure: PortMappingFailure, always: Bool = false) {
        if always || failure != lastFailure { emit(.failed(failure)) }
        lastFailure = failure
    }

    /// One round: find a router if there is none, then map (or renew) every port.
    private func cycle() {
        guard !isStopping else { return }
        if router == nil {
            var seen: [String] = []
            for find in finders {
                guard !isStopping else { return }
                switch find() {
                case .found(let r): router = r
                case .none(let text): seen.append(text)
                }
                if router != nil { break }
            }
            guard router != nil else {
                fail(PortMappingFailure(reason: .noRouter, method: nil, router: nil, detail: seen.joined(separator: "; "), ports: configuration.ports))
                schedule(after: configuration.retryAfterNone)
                return
            }
        }
        guard let router, !isStopping else { return }
        let previous = current
        do {
            let address = try router.externalAddress()
            var mappings: [Mapping] = []
            var refused: [(PortRequest, RouterError)] = []
            for request in configuration.ports {
                guard !isStopping else { break }
                let preferred = previous?.externalPort(request.proto, internalPort: request.internalPort) ?? request.internalPort
                do {
                    mayHoldMappings.store(true, ordering: .releasing)
                    mappings.append(try router.map(request, preferredExternalPort: preferred, lease: configuration.lease,
                                                   description: "\(configuration.description) \(request.proto.rawValue)"))
                } catch where !error.unreachable {
                    refused.append((request, error))
                }
            }
            let state = MappedState(method: router.method, router: router.name, externalAddress: address,
                                    localAddress: router.localAddress, mappings: mappings)
            // Kept even when stopping, so that `stop` deletes what was just made.
            mapped.withLock { $0 = mappings.isEmpty ? nil : state }
            guard !isStopping else { return }
            if !mappings.isEmpty {
                let changed = previous.map { !$0.sameEndpoints(as: state) } ?? true
                emit(changed ? .mapped(state) : .renewed(state))
            }
            if !refused.isEmpty {
                let detail = refused.map { "\($0.0.proto.rawValue) \($0.0.internalPort): \($0.1.description)" }.joined(separator: "; ")
                fail(PortMappingFailure(reason: .refused, method: router.method, router: router.name, detail: detail, ports: refused.map(\.0)))
            } else {
                lastFailure = nil
            }
            backoff = configuration.backoff.first
            if mappings.isEmpty {
                // Refused everything: perhaps another router appears, or this one is reconfigured.
                self.router = nil
                schedule(after: configuration.retryAfterNone)
                return
            }
            let leases = mappings.map(\.lease).filter { $0 > 0 }
            let next = leases.min().map { Double($0) * configuration.renewAt } ?? configuration.maximumInterval
            schedule(after: max(configuration.minimumInterval, min(configuration.maximumInterval, next)))
        } catch {
            // No answer: the router went away (or never answered its control URL).
            mapped.withLock { $0 = nil }
            self.router = nil
            guard !isStopping else { return }
            let failure = PortMappingFailure(reason: previous == nil ? .noAnswer : .lost, method: router.method, router: router.name,
                                             detail: error.description, ports: configuration.ports)
            fail(failure, always: previous != nil)
            schedule(after: backoff)
            backoff = min(configuration.backoff.maximum, backoff * 2)
        }
    }
}
