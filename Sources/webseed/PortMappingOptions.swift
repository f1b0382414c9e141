import ArgumentParser
import Gateway
import PortMapping
import Swarm
import Synchronization

/// `--offline`, as `seed`, `get` and `gateway` describe it.
let offlineHelp: ArgumentHelp = "Keep every discovery mechanism on this host: no public DHT routers, trackers, UPnP/NAT-PMP port mapping or local discovery."

/// Router port mapping options shared by `seed` and `gateway`.
struct PortMappingOptions: ParsableArguments {
    @Flag(name: .customLong("no-upnp"), help: "Do not map ports on the router (neither UPnP nor NAT-PMP). --offline implies it.")
    var noUPnP = false

    @Option(name: .customLong("upnp-lease"), help: "Lease asked of the router for each mapping, in seconds (renewed at half, and at least every 5 minutes).")
    var lease: Int = 3600

    func validate() throws {
        guard (4...604_800).contains(lease) else { throw ValidationError("--upnp-lease must be between 4 and 604800 seconds") }
    }

    /// Starts mapping `seeder`'s peer port (TCP, bound to `listenHost:port`) and DHT port
    /// (UDP, when it runs a DHT) on the local router. Returns the mapper (nil when mapping
    /// is off, or pointless because the peer port listens on loopback only) and where peers
    /// should connect, kept current from the mapper's events; `onChange` is told each change.
    func start(offline: Bool, seeder: Seeder, listenHost: String, port: Int, log: EventLog,
               onChange: @escaping @Sendable (MappedState?) -> Void = { _ in }) -> (PortMapper?, Reachability) {
        let localHost = advertisedHost(listenHost)
        let reach = Reachability(localHost: localHost, port: port)
        guard !noUPnP, !offline, !isLoopback(listenHost) else { return (nil, reach) }
        var ports = [PortRequest(.tcp, port)]
        if let udpPort = seeder.dhtLocalPort { ports.append(PortRequest(.udp, udpPort)) }
        var configuration = PortMapperConfiguration(ports: ports)
        configuration.lease = lease
        let mapper = PortMapper(configuration: configuration) { event in
            log.portMapping(event, localHost: localHost)
            switch event {
            case .mapped(let state):
                reach.update(state)
                onChange(state)
            case .failed(let f) where f.reason == .lost:
                reach.update(nil)
                onChange(nil)
            default: break
            }
        }
        mapper.start()
        return (mapper, reach)
    }
}

func isLoopback(_ host: String) -> Bool {
    host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
}

/// Where this host tells peers to connect: the router's mapping when there is one, else
/// the local address. Read by the status page; updated by port-mapping events.
final class Reachability: Sendable {
    private let local: String
    private let localPort: Int
    private let state = Mutex<MappedState?>(nil)

    init(localHost: String, port: Int) {
        local = localHost
        localPort = port
    }

    func update(_ s: MappedState?) { state.withLock { $0 = s } }

    /// HOST:PORT for a magnet's x.pe.
    var peerAddress: String {
        if let s = state.withLock({ $0 }), let tcp = s.externalPort(.tcp) { return "\(bracketed(s.externalAddress)):\(tcp)" }
        return "\(local):\(localPort)"
    }

    /// The TCP port to announce (on the DHT): the external one when mapped.
    var announcedPort: Int { state.withLock { $0 }?.externalPort(.tcp) ?? localPort }

    var endpoint: PeerEndpoint {
        let s = state.withLock { $0 }
        return PeerEndpoint(address: peerAddress, mapping: s.map {
            PeerEndpoint.Mapping(method: $0.method.rawValue, methodLabel: $0.method.label, externalAddress: $0.externalAddress,
                                 tcp: $0.externalPort(.tcp), udp: $0.externalPort(.udp))
        })
    }

    private func bracketed(_ host: String) -> String { host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host }
}

extension EventLog {
    func portMapping(_ event: PortMapperEvent, localHost: String) {
        switch event {
        case .mapped(let s), .renewed(let s):
            var o = Self.mappingObject(s)
            if case .renewed = event {
                o["event"] = "port_mapping_renewed"
                emitEvent(o, text: nil)
            } else {
                o["event"] = "port_mapping"
                let list = s.mappings.map { "\($0.proto.rawValue) \($0.externalPort) → \(s.localAddress):\($0.internalPort)" }
                let leases = Set(s.mappings.map(\.lease))
                let lease = leases.count == 1 ? " (lease \(Self.duration(leases.first!)))" : ""
                let nat = Self.isPrivateIPv4(s.externalAddress) ? "; its external address is private, so another NAT lies beyond it and peers on the internet may still not reach this host" : ""
                emitEvent(o, text: "port mapping: \(s.method.label) router \(s.router) maps \(s.externalAddress) \(list.joined(separator: ", "))\(lease)\(nat)")
            }
        case .removed(let s):
            var o = Self.mappingObject(s)
            o["event"] = "port_mapping_removed"
            let list = s.mappings.map { "\($0.proto.rawValue) \($0.externalPort)" }.joined(separator: ", ")
            emitEvent(o, text: "port mapping: removed \(list) from the \(s.method.label) router")
        case .failed(let f):
            let message = Self.failureMessage(f, localHost: localHost)
            let o: [String: JSON] = ["event": "port_mapping_failed", "reason": .string(f.reason.rawValue), "method": JSON(f.method?.rawValue),
                                     "router": JSON(f.router), "detail": .string(f.detail), "message": .string(message)]
            if json { emitEvent(o, text: nil) } else { warning(message) }
        }
    }

    /// RFC 1918 and shared (RFC 6598, carrier-grade NAT) IPv4 addresses.
    static func isPrivateIPv4(_ text: String) -> Bool {
        let o = text.split(separator: ".").compactMap { Int($0) }
        guard o.count == 4 else { return false }
        return o[0] == 10 || (o[0] == 172 && (16...31).contains(o[1])) || (o[0] == 192 && o[1] == 168) || (o[0] == 100 && (64...127).contains(o[1]))
    }

    private static func mappingObject(_ s: MappedState) -> [String: JSON] {
        ["method": .string(s.method.rawValue), "router": .string(s.router), "external_address": .string(s.externalAddress),
         "local_address": .string(s.localAddress),
         "mappings": .array(s.mappings.map {
             .object(["protocol": .string($0.proto.rawValue), "internal_port": JSON($0.internalPort),
                      "external_port": JSON($0.externalPort), "lease": JSON($0.lease)])
         })]
    }

    /// One line: what happened, and what it means for reaching this host.
    static func failureMessage(_ f: PortMappingFailure, localHost: String) -> String {
        let ports = f.ports.map { "\($0.proto.rawValue) port \($0.internalPort)" }
        let byHand = "forward \(ports.joined(separator: " and ")) to \(localHost) by hand"
        let router = "the \(f.method?.label ?? "") router at \(f.router ?? "?")"
        let detail = oneLine(f.detail)
        switch f.reason {
        case .noRouter:
            return "port mapping: no UPnP or NAT-PMP router found (\(detail)); only peers that can reach \(localHost) directly will connect — \(byHand) if peers outside should connect"
        case .refused:
            return "port mapping: \(router) refused (\(detail)); \(byHand) if peers outside should connect"
        case .noAnswer:
            return "port mapping: \(router) gave no usable answer (\(detail)); \(byHand) if peers outside should connect"
        case .lost:
            return "port mapping: \(router) stopped answering (\(detail)); peers outside may not reach this host until it is back — looking for it again"
        }
    }

    private static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline || $0 == "\t" ? " " : $0 }.prefix(300))
    }

    private static func duration(_ seconds: Int) -> String {
        if seconds == 0 { return "permanent" }
        if seconds % 3600 == 0 { return "\(seconds / 3600) h" }
        if seconds % 60 == 0 { return "\(seconds / 60) min" }
        return "\(seconds) s"
    }
}
