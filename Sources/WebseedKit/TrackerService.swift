import ServiceLifecycle

/// Trackers as a peer source: runs the `TrackerClient` that seeded sites and downloads are
/// announced on (see `EngineContext.announceSites` and `fetch`); on shutdown every tracker
/// told `started` is told `stopped`.
struct TrackerService: EngineService {
    let context: EngineContext

    func run(started: @escaping @Sendable () -> Void) async throws {
        let client = TrackerClient(log: context.log, offline: context.configuration.offline)
        context.trackers = client
        started()
        try? await gracefulShutdown()
        await client.stop()
    }
}
