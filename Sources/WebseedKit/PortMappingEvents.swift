import PortMapping

extension EventSink {
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
            warning(message, object: o)
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
