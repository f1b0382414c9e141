import Locking
import DHT
import DHTProtocol
import ServiceLifecycle

/// The last service of `dht`: announces and looks up the hashes given. With
/// --exit-after-lookups it ends the engine once every lookup found a peer, or after the
/// timeout; the lookups still pending are left in `pending` for the engine's last lines.
struct DHTSession: EngineService {
    let node: DHTNodeService
    let log: EventSink
    let settings: EngineConfiguration.DHT
    let offline: Bool
    let pending: PendingLookups

    func run(started: @escaping @Sendable () -> Void) async throws {
        let (done, finish) = AsyncStream.makeStream(of: Void.self)
        pending.hashes.withLock { $0 = Set(settings.lookups) }
        for (hash, port) in settings.announces { node.node.announce(hash, port: port) }
        let log = self.log, pending = self.pending, exitAfterLookups = settings.exitAfterLookups
        for hash in settings.lookups {
            node.node.lookup(hash, every: 5) { peers in
                log.lookupDone(hash, peers: peers)
                let left = pending.hashes.withLock { s in
                    s.remove(hash)
                    return s.count
                }
                if left == 0, exitAfterLookups { finish.finish() }
                return false
            }
        }
        startItemOperations(node.node, log: log, gets: settings.itemGets, puts: settings.itemPuts)
        log.ready(offline: offline)
        started()
        guard exitAfterLookups else {
            try? await gracefulShutdown()
            return
        }
        let timeout = settings.timeout
        // Whichever comes first: every lookup answered, the timeout, or a signal.
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { for await _ in done {} }
                group.addTask { try? await Task.sleep(for: .seconds(timeout)) }
                await group.next()
                group.cancelAll()
            }
        }
    }
}

/// Lookups not answered yet.
final class PendingLookups: Sendable {
    let hashes = Locked<Set<NodeID>>([])
}
