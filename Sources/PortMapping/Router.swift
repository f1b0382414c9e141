/// Port mapping vocabulary: what is asked of a router, what it granted, and the routers
/// themselves (UPnP IGD through libminiupnpc, NAT-PMP through libnatpmp).
///
/// Every `MappingRouter` call is a blocking network exchange with the router (up to a few
/// seconds each); `PortMapper` makes them on its own thread, never on an event loop.

public enum TransportProtocol: String, Sendable, Hashable {
    case tcp = "TCP"
    case udp = "UDP"
}

public enum PortMappingMethod: String, Sendable {
    case upnp
    case natpmp

    /// How the protocol is written for people: "UPnP", "NAT-PMP".
    public var label: String { self == .upnp ? "UPnP" : "NAT-PMP" }
}

/// One port this host wants reachable from outside.
public struct PortRequest: Sendable, Hashable {
    public var proto: TransportProtocol
    public var internalPort: Int
    public init(_ proto: TransportProtocol, _ internalPort: Int) {
        self.proto = proto
        self.internalPort = internalPort
    }
}

/// A mapping the router holds: outside `externalPort` → this host's `internalPort`.
public struct Mapping: Sendable, Hashable {
    public var proto: TransportProtocol
    public var internalPort: Int
    public var externalPort: Int
    /// Seconds granted (0: the router said the mapping is permanent).
    public var lease: Int
    public init(proto: TransportProtocol, internalPort: Int, externalPort: Int, lease: Int) {
        self.proto = proto
        self.internalPort = internalPort
        self.externalPort = externalPort
        self.lease = lease
    }
}

/// Everything mapped on one router: what the engine reports as its own address.
public struct MappedState: Sendable, Equatable {
    public var method: PortMappingMethod
    /// The router: its UPnP description URL, or the NAT-PMP gateway's address.
    public var router: String
    public var externalAddress: String
    /// This host's address as the router sees it (where the mappings point).
    public var localAddress: String
    public var mappings: [Mapping]

    public func externalPort(_ proto: TransportProtocol, internalPort: Int? = nil) -> Int? {
        mappings.first { $0.proto == proto && (internalPort == nil || $0.internalPort == internalPort) }?.externalPort
    }

    /// Same router, address and ports (leases aside).
    func sameEndpoints(as other: MappedState) -> Bool {
        var a = self, b = other
        for i in a.mappings.indices { a.mappings[i].lease = 0 }
        for i in b.mappings.indices { b.mappings[i].lease = 0 }
        return a == b
    }
}

/// A router's answer other than success.
public struct RouterError: Error, Sendable, CustomStringConvertible {
    /// The protocol's error code (UPnP: 718 ConflictInMappingEntry …; NAT-PMP result codes),
    /// or a negative library code when there was no usable answer.
    public var code: Int
    public var text: String
    /// No answer at all (connection refused, timeout, unparseable reply): the router may be
    /// gone, as opposed to a router that answered "no".
    public var unreachable: Bool

    public init(code: Int, text: String, unreachable: Bool) {
        self.code = code
        self.text = text
        self.unreachable = unreachable
    }

    public var description: String { code > 0 ? "\(code) \(text)" : text }
}

/// A router found on the local network. Blocking calls; one thread at a time.
public protocol MappingRouter: AnyObject {
    var method: PortMappingMethod { get }
    var name: String { get }
    var localAddress: String { get }
    func externalAddress() throws(RouterError) -> String
    /// Maps `request`, outside on `preferredExternalPort` if the router allows, else on
    /// another port; renewing an existing mapping of ours is the same call.
    func map(_ request: PortRequest, preferredExternalPort: Int, lease: Int, description: String) throws(RouterError) -> Mapping
    func unmap(_ mapping: Mapping) throws(RouterError)
}

/// What looking for a router found.
public enum Discovery {
    case found(any MappingRouter)
    /// No router of this kind; the text says what was seen, for the user.
    case none(String)
}
