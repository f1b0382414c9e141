import Locking
import Logging
import ServiceLifecycle
import Testing
@testable import WebseedKit

/// What the fake services did, in order.
private final class Journal: Sendable {
    private let entries = Locked<[String]>([])
    func add(_ entry: String) { entries.withLock { $0.append(entry) } }
    var all: [String] { entries.withLock { $0 } }
}

/// A service that starts (or fails to), then runs until graceful shutdown; or, when
/// `finishes`, returns as soon as it started (work done).
private struct Step: EngineService {
    let name: String
    let journal: Journal
    var fails = false
    var finishes = false
    /// Told when its start-up begins (before `started()`).
    var beginning: AsyncStream<Void>.Continuation?
    /// Its start-up lasts until graceful shutdown.
    var startsSlowly = false

    func run(started: @escaping @Sendable () -> Void) async throws {
        journal.add("start \(name)")
        beginning?.yield()
        if startsSlowly { try? await gracefulShutdown() }
        if fails { throw ValidationFailure("\(name) cannot start") }
        started()
        if finishes {
            journal.add("done \(name)")
            return
        }
        try? await gracefulShutdown()
        journal.add("stop \(name)")
    }
}

private func group(_ steps: [any EngineService], order: StartupOrder) -> ServiceGroup {
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    return ServiceGroup(configuration: .init(services: steps.enumerated().map { order.service($1, at: $0) }, logger: logger))
}

@Suite struct StartupOrderTests {
    @Test func servicesStartInOrderAndStopInReverse() async throws {
        let journal = Journal()
        let order = StartupOrder()
        try await group([Step(name: "a", journal: journal), Step(name: "b", journal: journal), Step(name: "c", journal: journal),
                         Step(name: "last", journal: journal, finishes: true)], order: order).run()
        #expect(journal.all == ["start a", "start b", "start c", "start last", "done last", "stop c", "stop b", "stop a"])
        #expect(order.error == nil)
    }

    @Test func aFailedStartStopsWhatStartedAndIsReported() async throws {
        let journal = Journal()
        let order = StartupOrder()
        try await group([Step(name: "a", journal: journal), Step(name: "b", journal: journal, fails: true),
                         Step(name: "c", journal: journal), Step(name: "last", journal: journal, finishes: true)], order: order).run()
        #expect(journal.all == ["start a", "start b", "stop a"])
        #expect((order.error as? ValidationFailure)?.description == "b cannot start")
    }

    @Test func aShutdownDuringStartUpNeverStartsTheRest() async throws {
        let journal = Journal()
        let order = StartupOrder()
        let (beginning, begin) = AsyncStream.makeStream(of: Void.self)
        let services = group([Step(name: "a", journal: journal), Step(name: "b", journal: journal, beginning: begin, startsSlowly: true),
                              Step(name: "c", journal: journal), Step(name: "last", journal: journal, finishes: true)], order: order)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await services.run() }
            for await _ in beginning { break }
            await services.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(journal.all == ["start a", "start b", "stop b", "stop a"])
        #expect(order.error == nil)
    }
}
