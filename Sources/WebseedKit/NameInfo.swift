import Locking
import DHT
import DHTProtocol
import Hashing
import Metainfo
import NIOPosix
import Names
import ServiceLifecycle
import Signing

extension Engine {
    /// `info` on a name: a DHT node on its own UDP address and `NameInfoSession`.
    static func nameInfo(_ configuration: EngineConfiguration, key: Ed25519PublicKey, salt: [UInt8]) throws -> Plan {
        let log = EventSink(json: configuration.json)
        let context = EngineContext(configuration: configuration, log: log, seeder: nil)
        let listen = configuration.listen
        // The node's own events (bootstrap, node counts) are not what `info` prints.
        let node = try DHTNodeService(loop: MultiThreadedEventLoopGroup.singleton.next(), context: context,
                                      own: (host: listen.host, port: listen.port, text: listen.text, attempts: 10)) { _ in }
        let failure = NameInfoFailure()
        let session = NameInfoSession(node: node, log: log, key: key, salt: salt, timeout: configuration.fetch?.timeout ?? 30, failure: failure)
        return ([node, session], { "resolving a name" }, {
            if let why = failure.why.withLock({ $0 }) { throw ValidationFailure(why) }
        })
    }
}

/// Looks a name up once (again each second while no node answers, for at most `timeout`
/// seconds: a node that just started knows nobody) and says what its item names: `seq`,
/// the site id, BEP 46's `ih`, the v2 hash and the torrent's magnet. The item's signature
/// is checked (a `MutableItem` holds only valid ones); the torrent is not fetched.
struct NameInfoSession: EngineService {
    let node: DHTNodeService
    let log: EventSink
    let key: Ed25519PublicKey
    let salt: [UInt8]
    let timeout: Double
    let failure: NameInfoFailure

    func run(started: @escaping @Sendable () -> Void) async throws {
        started()
        let name = salt.isEmpty ? SiteName.name(for: key) : SiteName.magnet(for: key, salt: salt)
        let (node, key, salt, timeout) = (self.node.node, self.key, self.salt, self.timeout)
        let item: MutableItem? = await cancelWhenGracefulShutdown {
            let started = ContinuousClock.now
            while !Task.isCancelled {
                if let item = await node.item(key: key, salt: salt) { return item }
                if ContinuousClock.now - started >= .seconds(timeout) { return nil }
                try? await Task.sleep(for: .seconds(1))
            }
            return nil
        }
        guard let item else {
            failure.why.withLock { $0 = "\(name): no DHT node holds an item for this name (looked for \(Int(timeout)) s)" }
            return
        }
        let record: SiteRecord
        do { record = try SiteRecord(value: item.value) } catch {
            failure.why.withLock { $0 = "\(name): seq \(item.seq): \(error.description)" }
            return
        }
        log.nameInfo(name: name, key: key, salt: salt, seq: item.seq, record: record)
    }
}

/// Why `info` on a name failed, for the engine's last line.
final class NameInfoFailure: Sendable {
    let why = Locked<String?>(nil)
}

extension EventSink {
    /// `name_info`: what the highest valid item of a name names.
    func nameInfo(name: String, key: Ed25519PublicKey, salt: [UInt8], seq: Int64, record: SiteRecord) {
        // `ih` is the v1 hash of a hybrid, or the v2 hash truncated for a v2-only torrent.
        let hybrid = record.ih != Array(record.v2.bytes.prefix(20))
        let magnet = MagnetLink(v1InfoHash: hybrid ? SHA1Digest(bytes: record.ih) : nil, v2InfoHash: record.v2).uri
        let text = """
        name \(name)
          public key    \(HexCoding.encode(key.bytes))\(salt.isEmpty ? "" : "\n  salt          \(HexCoding.encode(salt))")
          seq           \(seq)
          site id       \(record.siteID)
          v2 info hash  \(record.v2.hex)
          ih (BEP 46)   \(HexCoding.encode(record.ih))\(hybrid ? " (v1 info hash)" : " (v2 info hash, truncated)")
          magnet        \(magnet)
          (the torrent's metadata is checked against this when it is fetched: webseed get NAME)
        """
        emitEvent(["event": "name_info", "name": .string(name), "public_key": .string(HexCoding.encode(key.bytes)),
                   "salt": .string(HexCoding.encode(salt)), "seq": .number(seq), "site_id": .string(record.siteID),
                   "v2_infohash": .string(record.v2.hex), "ih": .string(HexCoding.encode(record.ih)), "magnet": .string(magnet)],
                  text: text)
    }
}
