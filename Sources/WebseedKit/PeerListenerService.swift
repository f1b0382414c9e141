import NIOCore
import ServiceLifecycle
import Swarm

/// The peer port: TCP for the peer wire protocol, UDP on the same port for uTP attempts and
/// (when it shares the port) the DHT. Shutting down flushes download records and closes
/// every connection.
struct PeerListenerService: EngineService {
    let context: EngineContext
    let seeder: Seeder
    /// Handlers put in front of uTP on the UDP side (the DHT's).
    let configureUDP: @Sendable (any Channel) throws -> Void

    func run(started: @escaping @Sendable () -> Void) async throws {
        let listen = context.configuration.listen
        for (t, _) in context.sites { seeder.add(t) }
        let listener: PeerListener
        do {
            listener = try await seeder.listen(on: listen.host, port: listen.port, configureUDP: configureUDP)
        } catch {
            await seeder.stop()
            throw ValidationFailure("cannot listen on \(listen.text): \(error)")
        }
        let port = listener.address.port ?? listen.port
        context.listener = listener
        context.reach.listening(port: port)
        context.log.listening(host: listener.address.ipAddress ?? listen.host, port: port, alsoIPv6: listener.address6 != nil)
        started()
        try? await gracefulShutdown()
        await seeder.stop()
    }
}
