import Locking
import ServiceLifecycle

/// A long-running part of the engine. `run` does its start-up work (bind, load, verify),
/// calls `started()` once the services after it may rely on it, then runs until graceful
/// shutdown and cleans up before returning. Returning on its own (work done, or an error)
/// shuts the whole engine down.
protocol EngineService: Sendable {
    func run(started: @escaping @Sendable () -> Void) async throws
}

/// Makes a ServiceGroup start services one after another: each waits until every service
/// before it called `started()`. (ServiceGroup itself starts them all at once; it already
/// shuts them down in reverse order.)
final class StartupOrder: Sendable {
    private struct State {
        var started = 0
        var nextID = 0
        var waiters: [Int: (count: Int, continuation: CheckedContinuation<Void, any Error>)] = [:]
        var cancelled: Set<Int> = []
    }
    private let state = Locked(State())
    /// The first error a service threw: what the engine reports.
    private let firstError = Locked<(any Error)?>(nil)

    var error: (any Error)? { firstError.withLock { $0 } }

    /// The service at `index`, started after those before it. Named by its type: without a
    /// name, ServiceGroup describes the service by reflection, which walks everything it holds
    /// (a 20,000-file torrent took 1.8 CPU-seconds).
    func service(_ service: any EngineService, at index: Int) -> ServiceGroupConfiguration.ServiceConfiguration {
        .init(service: Ordered(index: index, inner: service, order: self),
              successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup,
              serviceName: String(describing: type(of: service)))
    }

    fileprivate func record(_ error: any Error) {
        firstError.withLock { if $0 == nil { $0 = error } }
    }

    fileprivate func markStarted(_ index: Int) {
        let ready = state.withLock { s -> [CheckedContinuation<Void, any Error>] in
            s.started = max(s.started, index + 1)
            let due = s.waiters.filter { $0.value.count <= s.started }
            for id in due.keys { s.waiters[id] = nil }
            return due.values.map(\.continuation)
        }
        for c in ready { c.resume() }
    }

    /// Returns once `count` services have started; throws CancellationError if cancelled first.
    func wait(untilStarted count: Int) async throws {
        let id = state.withLock { s in
            s.nextID += 1
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                let outcome = state.withLock { s -> Bool? in
                    if s.cancelled.contains(id) { return false }
                    if s.started >= count { return true }
                    s.waiters[id] = (count, c)
                    return nil
                }
                switch outcome {
                case true?: c.resume()
                case false?: c.resume(throwing: CancellationError())
                case nil: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { s in
                s.cancelled.insert(id)
                return s.waiters.removeValue(forKey: id)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }
}

/// One engine service as swift-service-lifecycle sees it.
private struct Ordered: Service {
    let index: Int
    let inner: any EngineService
    let order: StartupOrder

    func run() async throws {
        do {
            let order = self.order, index = self.index
            try await cancelWhenGracefulShutdown { try await order.wait(untilStarted: index) }
        } catch {
            return  // shut down while the services before it were starting: it never starts
        }
        do {
            try await inner.run { [order, index] in order.markStarted(index) }
        } catch {
            // Kept for the engine to report, and returned from normally so that the group
            // shuts down gracefully (mappings removed, records flushed) rather than cancels.
            order.record(error)
        }
    }
}
