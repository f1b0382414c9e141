import CNATPMP

#if canImport(Glibc)
import Glibc
#endif

/// NAT-PMP (RFC 6886) to the default gateway, through libnatpmp. The router picks the
/// external port (it honours the suggested one when it can) and the lease.
public final class NATPMPRouter: MappingRouter {
    public let method = PortMappingMethod.natpmp
    public let name: String
    public let localAddress: String
    private let handle: UnsafeMutablePointer<natpmp_t>
    /// How long one request waits for its answer, retries included.
    private let timeoutMs: Int

    private init(handle: UnsafeMutablePointer<natpmp_t>, name: String, localAddress: String, timeoutMs: Int) {
        self.handle = handle
        self.name = name
        self.localAddress = localAddress
        self.timeoutMs = timeoutMs
    }

    deinit {
        closenatpmp(handle)
        handle.deallocate()
    }

    /// Asks the default gateway for its public address; a router that answers is returned.
    public static func discover(timeoutMs: Int = 2000) -> Discovery {
        let handle = UnsafeMutablePointer<natpmp_t>.allocate(capacity: 1)
        let r = initnatpmp(handle, 0, 0)
        guard r >= 0 else {
            handle.deallocate()
            return .none(r == NATPMP_ERR_CANNOTGETGATEWAY ? "no default gateway for NAT-PMP" : "NAT-PMP unavailable (\(describe(r)))")
        }
        var gateway = [CChar](repeating: 0, count: 16)
        var local = [CChar](repeating: 0, count: 16)
        ws_natpmp_gateway(handle, &gateway)
        _ = ws_natpmp_local(handle, &local)
        let router = NATPMPRouter(handle: handle, name: text(gateway), localAddress: text(local), timeoutMs: timeoutMs)
        do {
            _ = try router.externalAddress()
            return .found(router)
        } catch {
            return .none(error.unreachable ? "the gateway \(router.name) does not answer NAT-PMP" : "NAT-PMP at \(router.name): \(error.description)")
        }
    }

    public func externalAddress() throws(RouterError) -> String {
        guard sendpublicaddressrequest(handle) >= 0 else { throw RouterError(code: -10, text: "cannot send a NAT-PMP request", unreachable: true) }
        let response = try await_()
        var out = [CChar](repeating: 0, count: 16)
        withUnsafePointer(to: response) { ws_natpmp_public_address($0, &out) }
        return Self.text(out)
    }

    public func map(_ request: PortRequest, preferredExternalPort: Int, lease: Int, description: String) throws(RouterError) -> Mapping {
        let proto = request.proto == .tcp ? NATPMP_PROTOCOL_TCP : NATPMP_PROTOCOL_UDP
        // RFC 6886: lifetime 0 would delete; NAT-PMP has no permanent mappings.
        let lifetime = UInt32(lease == 0 ? 7200 : lease)
        guard sendnewportmappingrequest(handle, proto, UInt16(request.internalPort), UInt16(preferredExternalPort), lifetime) >= 0 else {
            throw RouterError(code: -10, text: "cannot send a NAT-PMP request", unreachable: true)
        }
        let r = try await_()
        return Mapping(proto: request.proto, internalPort: request.internalPort,
                           externalPort: Int(r.pnu.newportmapping.mappedpublicport), lease: Int(r.pnu.newportmapping.lifetime))
    }

    public func unmap(_ mapping: Mapping) throws(RouterError) {
        let proto = mapping.proto == .tcp ? NATPMP_PROTOCOL_TCP : NATPMP_PROTOCOL_UDP
        guard sendnewportmappingrequest(handle, proto, UInt16(mapping.internalPort), 0, 0) >= 0 else {
            throw RouterError(code: -10, text: "cannot send a NAT-PMP request", unreachable: true)
        }
        _ = try await_()
    }

    /// Waits for the pending request's answer (libnatpmp resends on its schedule), at most `timeoutMs`.
    private func await_() throws(RouterError) -> natpmpresp_t {
        var response = natpmpresp_t()
        let deadline = Self.nowMs() + timeoutMs
        while true {
            let left = deadline - Self.nowMs()
            guard left > 0 else { throw RouterError(code: -7, text: "no NAT-PMP answer from \(name)", unreachable: true) }
            let r = ws_natpmp_step(handle, &response, Int32(left))
            if r >= 0 { return response }
            if r == NATPMP_TRYAGAIN { continue }
            // The router's result codes (RFC 6886 §3.5) come back as these; the rest are local failures.
            let resultCodes: [Int32: Int] = [NATPMP_ERR_UNSUPPORTEDVERSION: 1, NATPMP_ERR_NOTAUTHORIZED: 2, NATPMP_ERR_NETWORKFAILURE: 3,
                                             NATPMP_ERR_OUTOFRESOURCES: 4, NATPMP_ERR_UNSUPPORTEDOPCODE: 5, NATPMP_ERR_UNDEFINEDERROR: 99]
            let code = resultCodes[r]
            throw RouterError(code: code ?? Int(r), text: Self.describe(r), unreachable: code == nil)
        }
    }

    static func describe(_ code: Int32) -> String {
        switch code {
        case NATPMP_ERR_NOTAUTHORIZED: return "not authorized (mapping refused)"
        case NATPMP_ERR_NETWORKFAILURE: return "network failure (the router has no external address)"
        case NATPMP_ERR_OUTOFRESOURCES: return "out of resources"
        case NATPMP_ERR_UNSUPPORTEDVERSION: return "unsupported version"
        case NATPMP_ERR_UNSUPPORTEDOPCODE: return "unsupported opcode"
        case NATPMP_ERR_UNDEFINEDERROR: return "undefined error"
        case NATPMP_ERR_RECVFROM: return "no NAT-PMP service answered"
        case NATPMP_ERR_WRONGPACKETSOURCE: return "answer from a stranger"
        case NATPMP_ERR_NOGATEWAYSUPPORT: return "the gateway does not support NAT-PMP"
        case NATPMP_ERR_CANNOTGETGATEWAY: return "cannot find the default gateway"
        case NATPMP_ERR_SOCKETERROR, NATPMP_ERR_CONNECTERR, NATPMP_ERR_SENDERR: return "socket error"
        default: return "NAT-PMP error \(code)"
        }
    }

    private static func nowMs() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
    }

    private static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
