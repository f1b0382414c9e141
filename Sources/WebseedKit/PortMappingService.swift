import PortMapping
import ServiceLifecycle

/// Maps the peer port (TCP) and the DHT's UDP port on the local router, keeps the mapping
/// renewed and the engine's `Reachability` current; shutting down removes the mappings.
/// Router calls block (for seconds with a slow router), so they run on a Dispatch thread:
/// never on a cooperative thread, nor on the thread pool the swarm reads the disk with.
struct PortMappingService: EngineService {
    let context: EngineContext
    var log: EventSink { context.log }
    let settings: EngineConfiguration.PortMapping

    func run(started: @escaping @Sendable () -> Void) async throws {
        let reach = context.reach
        let port = context.listener?.address.port ?? context.configuration.listen.port
        var ports = [PortRequest(.tcp, port)]
        if let udp = context.dhtPort { ports.append(PortRequest(.udp, udp)) }
        var configuration = PortMapperConfiguration(ports: ports)
        configuration.lease = settings.lease
        let context = self.context, log = self.log
        let mapper = PortMapper(configuration: configuration) { event in
            log.portMapping(event, localHost: reach.localHost)
            switch event {
            case .mapped(let state):
                reach.update(state)
                if let tcp = state.externalPort(.tcp) { context.reannounce(port: tcp) }
            case .failed(let f) where f.reason == .lost:
                reach.update(nil)
            default: break
            }
        }
        mapper.start()
        context.mapper = mapper
        started()
        try? await gracefulShutdown()
        _ = await blocking { mapper.stop() }
    }
}

extension PortMapper {
    /// Waits (on a Dispatch thread) for the first mapping outcome, at most `timeout` seconds;
    /// a graceful shutdown ends the wait at once.
    func firstOutcome(timeout: Double) async {
        await withGracefulShutdownHandler {
            _ = await blocking { self.waitForFirstOutcome(timeout: timeout) }
        } onGracefulShutdown: {
            self.interruptWait()
        }
    }
}
