import Hummingbird
import NIOCore

/// The request context the gateway's responder gets: Hummingbird's basics, plus the two ends
/// of the connection the request came on (its tracker keeps peers by the connection's
/// address, and names this host by the address the client reached).
public struct GatewayRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The client's address (nil where there is no socket, as in tests).
    public let remoteAddress: SocketAddress?
    /// This host's address the client connected to.
    public let localAddress: SocketAddress?
    /// The event loop of the connection (a body's chunks wait for it: `GatewayResponder.send`).
    public let eventLoop: any EventLoop

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        localAddress = source.channel.localAddress
        eventLoop = source.channel.eventLoop
    }
}
