import CMiniUPnPc

#if canImport(Glibc)
import Glibc
#endif

/// The four SOAP actions of WANIPConnection that mapping needs, as blocking calls returning
/// the UPnP status (0 success, a UPnP error code, or a negative libminiupnpc code). The
/// real one is `MiniUPnPcControl`; tests give `UPnPRouter` a fake.
public protocol IGDControl: AnyObject {
    func getExternalIPAddress() -> (Int, String)
    func addPortMapping(external: Int, internalPort: Int, client: String, proto: TransportProtocol, lease: Int, description: String) -> Int
    /// The mapping on `external`/`proto`: (status, internal client, internal port, remaining lease).
    func getSpecificPortMappingEntry(external: Int, proto: TransportProtocol) -> (Int, String, Int, Int)
    func deletePortMapping(external: Int, proto: TransportProtocol) -> Int
}

/// A UPnP Internet Gateway Device: picks free external ports and reads back leases.
public final class UPnPRouter: MappingRouter {
    public let method = PortMappingMethod.upnp
    public let name: String
    public let localAddress: String
    private let control: any IGDControl
    /// External ports tried after the preferred one when it is taken (718).
    private let alternates: () -> Int

    public init(name: String, localAddress: String, control: any IGDControl, alternates: @escaping () -> Int = { Int.random(in: 10_000...60_000) }) {
        self.name = name
        self.localAddress = localAddress
        self.control = control
        self.alternates = alternates
    }

    /// UPnP error codes that say "this external port is not available to you".
    static let portTaken: Set<Int> = [718 /* ConflictInMappingEntry */, 727 /* ExternalPortOnlySupportsWildcard */]
    /// How many external ports `map` tries before giving up.
    public static let candidates = 8

    public func externalAddress() throws(RouterError) -> String {
        let (status, address) = control.getExternalIPAddress()
        guard status == 0 else { throw Self.error(status, action: "GetExternalIPAddress") }
        guard !address.isEmpty else { throw RouterError(code: -4, text: "GetExternalIPAddress: the router has no external address", unreachable: false) }
        return address
    }

    public func map(_ request: PortRequest, preferredExternalPort: Int, lease: Int, description: String) throws(RouterError) -> Mapping {
        var port = preferredExternalPort
        var lease = lease
        var tried: [Int] = []
        var lastTaken: RouterError?
        while tried.count < Self.candidates {
            tried.append(port)
            // A port another client holds is skipped without asking to overwrite it.
            let (found, client, internalPort, _) = control.getSpecificPortMappingEntry(external: port, proto: request.proto)
            if found == 0, client != localAddress || internalPort != request.internalPort {
                lastTaken = RouterError(code: 718, text: "ConflictInMappingEntry (held by \(client):\(internalPort))", unreachable: false)
                port = nextCandidate(tried)
                continue
            }
            let status = control.addPortMapping(external: port, internalPort: request.internalPort, client: localAddress,
                                                proto: request.proto, lease: lease, description: description)
            if status == 0 {
                // Routers may grant less than asked: read the lease back. It comes back as the
                // seconds remaining, a second or two short of a lease granted in full.
                let (check, _, _, remaining) = control.getSpecificPortMappingEntry(external: port, proto: request.proto)
                let shorter = check == 0 && remaining > 0 && (lease == 0 || remaining < lease - 2)
                let granted = shorter ? remaining : lease
                return Mapping(proto: request.proto, internalPort: request.internalPort, externalPort: port, lease: granted)
            }
            if Self.portTaken.contains(status) {
                lastTaken = Self.error(status, action: "AddPortMapping")
                port = nextCandidate(tried)
            } else if status == 725 /* OnlyPermanentLeasesSupported */ && lease != 0 {
                lease = 0
                tried.removeLast()
            } else if status == 724 /* SamePortValuesRequired */ && port != request.internalPort {
                port = request.internalPort
            } else {
                throw Self.error(status, action: "AddPortMapping")
            }
        }
        let last = lastTaken.map { ": \($0.description)" } ?? ""
        throw RouterError(code: 718, text: "no free external \(request.proto.rawValue) port (tried \(tried.map(String.init).joined(separator: ", ")))\(last)", unreachable: false)
    }

    public func unmap(_ mapping: Mapping) throws(RouterError) {
        let status = control.deletePortMapping(external: mapping.externalPort, proto: mapping.proto)
        guard status == 0 || status == 714 /* NoSuchEntryInArray: gone already */ else {
            throw Self.error(status, action: "DeletePortMapping")
        }
    }

    private func nextCandidate(_ tried: [Int]) -> Int {
        var p = alternates()
        for _ in 0..<16 where tried.contains(p) { p = alternates() }
        return p
    }

    static func error(_ status: Int, action: String) -> RouterError {
        if status > 0 {
            return RouterError(code: status, text: "\(action): \(UPnPLibrary.describe(errorCode: Int32(status)))", unreachable: false)
        }
        // libminiupnpc: -3 no HTTP answer (refused, timed out), -4 an answer it could not read.
        let text = status == -3 ? "no answer to \(action)" : "\(action): \(UPnPLibrary.describe(errorCode: Int32(status)))"
        return RouterError(code: status, text: text, unreachable: true)
    }
}

/// libminiupnpc itself: discovery and the SOAP calls.
public enum UPnPLibrary {
    /// `MINIUPNPC_API_VERSION` of the headers compiled against (17 on Debian 12).
    public static let apiVersion = Int(MINIUPNPC_API_VERSION)

    /// A human-readable text for a UPnP or libminiupnpc error code, from the library.
    public static func describe(errorCode: Int32) -> String {
        guard let text = strupnperror(errorCode) else { return "UPnP error \(errorCode)" }
        return String(cString: text)
    }

    /// SSDP discovery, then the first usable Internet Gateway Device. libminiupnpc searches
    /// four device types in turn and waits `delayMs` for each that finds nothing, so a
    /// network without a UPnP router costs 4 × `delayMs`; a router that answers, about
    /// `delayMs` plus the description fetch.
    public static func discover(delayMs: Int = 1000) -> Discovery {
        let igd = UnsafeMutablePointer<ws_igd>.allocate(capacity: 1)
        var devices: Int32 = 0
        let r = ws_igd_discover(igd, Int32(delayMs), &devices)
        switch r {
        case 1, 2:
            let control = MiniUPnPcControl(igd)
            let local = withUnsafeBytes(of: igd.pointee.lanaddr) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            return .found(UPnPRouter(name: control.rootURL, localAddress: local, control: control))
        default:
            ws_igd_free(igd)
            igd.deallocate()
            switch r {
            case -1: return .none("no UPnP device answered")
            case 3: return .none("\(devices) UPnP device\(devices == 1 ? "" : "s") answered, none an Internet Gateway Device")
            default: return .none("\(devices) UPnP device\(devices == 1 ? "" : "s") answered, none with a usable gateway description")
            }
        }
    }
}

/// WANIPConnection over libminiupnpc's blocking HTTP (each call times out after seconds).
final class MiniUPnPcControl: IGDControl {
    private let igd: UnsafeMutablePointer<ws_igd>
    let rootURL: String
    private let controlURL: String
    private let serviceType: String

    init(_ igd: UnsafeMutablePointer<ws_igd>) {
        self.igd = igd
        rootURL = String(cString: ws_igd_root_url(igd))
        controlURL = String(cString: ws_igd_control_url(igd))
        serviceType = String(cString: ws_igd_service_type(igd))
    }

    deinit {
        ws_igd_free(igd)
        igd.deallocate()
    }

    func getExternalIPAddress() -> (Int, String) {
        var buffer = [CChar](repeating: 0, count: 64)
        let r = UPNP_GetExternalIPAddress(controlURL, serviceType, &buffer)
        return (Int(r), Self.text(buffer))
    }

    func addPortMapping(external: Int, internalPort: Int, client: String, proto: TransportProtocol, lease: Int, description: String) -> Int {
        Int(UPNP_AddPortMapping(controlURL, serviceType, String(external), String(internalPort), client, description,
                                proto.rawValue, nil, String(lease)))
    }

    func getSpecificPortMappingEntry(external: Int, proto: TransportProtocol) -> (Int, String, Int, Int) {
        var client = [CChar](repeating: 0, count: 64)
        var port = [CChar](repeating: 0, count: 16)
        var desc = [CChar](repeating: 0, count: 128)
        var enabled = [CChar](repeating: 0, count: 16)
        var lease = [CChar](repeating: 0, count: 32)
        let r = UPNP_GetSpecificPortMappingEntry(controlURL, serviceType, String(external), proto.rawValue, nil,
                                                 &client, &port, &desc, &enabled, &lease)
        return (Int(r), Self.text(client), Int(Self.text(port)) ?? 0, Int(Self.text(lease)) ?? 0)
    }

    func deletePortMapping(external: Int, proto: TransportProtocol) -> Int {
        Int(UPNP_DeletePortMapping(controlURL, serviceType, String(external), proto.rawValue, nil))
    }

    private static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
