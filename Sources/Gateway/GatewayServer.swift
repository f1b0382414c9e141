import Locking
import CoreMetrics
import Hummingbird
import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization

public struct GatewayOptions: Sendable {
    /// With exactly one site, serve it at `/` for every Host other than `localhost`.
    public var singleSiteAtRoot = false
    /// Serve `/index.html` for missing paths without an extension (single-page apps).
    public var spa = false
    /// Verified mode: a site's own origin gets a bootstrap page and a service worker that
    /// checks every byte in the browser (`VerifiedMode.swift`).
    public var verifyInBrowser = false
    /// In verified mode: other places the worker may fetch a site's bytes from when this
    /// gateway fails (URL prefixes, `{site}` standing for the site id).
    public var verifySources: [String] = []
    /// Start fetching a valid site id this gateway does not know (from the peers it knows).
    public var fetchUnknownIDs = false
    /// The address the gateway listens on: the host of each site's web-seed URL on the
    /// status page (`WebSeedURL`).
    public var listenHost = "127.0.0.1"
    /// How long a request waits for a site's metadata or for the bytes it asked for.
    public var timeout: Double = 30
    /// A request head must arrive within this long of the connection opening or of the
    /// previous response (slow clients cannot hold connections forever).
    public var headTimeout: TimeAmount = .seconds(20)
    /// Connections open at once; one more is closed as soon as it is accepted. A connection
    /// holds at most about 1.8 MB of a body's buffers, so this also bounds their memory.
    public var maxConnections = 512
    /// Told (site name, path) when a file is found changed on disk while serving it; once per file.
    public var onFileChanged: (@Sendable (String, String) -> Void)?
    /// Where peers reach this host now (shown on the status page), asked on each request.
    public var peerEndpoint: (@Sendable () -> PeerEndpoint?)?
    /// The trackers announced to and how each answered (status page), asked on each request.
    public var trackers: (@Sendable () -> [TrackerState])?
    /// Text for `GET /metrics` on the gateway's own origin (Prometheus' text format), asked
    /// on each request; nil: no such page.
    public var metrics: (@Sendable () -> String)?
    /// Every answer is counted in `webseed_http_requests_total{status}` with this factory;
    /// nil: not counted.
    public var requestMetrics: (any MetricsFactory)?
    /// Where this host takes peer connections (a socket per family), asked on each announce:
    /// the gateway's tracker lists this host as a peer of the sites it holds (nil: it does not).
    public var peerListeners: (@Sendable () -> [SocketAddress])?
    /// The 20-byte hashes of torrents seeded here that are no site (v1-only), which the
    /// tracker answers for too.
    public var seededHashes: (@Sendable () -> [[UInt8]])?
    public init() {}
}

/// One tracker of one announced hash, as the status page shows it.
public struct TrackerState: Sendable {
    public var url: String
    public var site: String
    /// The 20-byte hash announced, in hex.
    public var hash: String
    /// "working", "failing", "not yet announced" or "stopped".
    public var state: String
    public var lastError: String?
    public var peers: Int?
    /// Seconds since the last announce (nil: none yet).
    public var secondsAgo: Int?
    public init(url: String, site: String, hash: String, state: String, lastError: String?, peers: Int?, secondsAgo: Int?) {
        self.url = url
        self.site = site
        self.hash = hash
        self.state = state
        self.lastError = lastError
        self.peers = peers
        self.secondsAgo = secondsAgo
    }
}

/// The address this host gives peers, and the router mapping behind it if there is one.
public struct PeerEndpoint: Sendable {
    public struct Mapping: Sendable {
        /// "upnp" or "natpmp".
        public var method: String
        /// How people write it: "UPnP", "NAT-PMP".
        public var methodLabel: String
        public var externalAddress: String
        public var tcp: Int?
        public var udp: Int?
        public init(method: String, methodLabel: String, externalAddress: String, tcp: Int?, udp: Int?) {
            self.method = method
            self.methodLabel = methodLabel
            self.externalAddress = externalAddress
            self.tcp = tcp
            self.udp = udp
        }
    }
    /// HOST:PORT (IPv6 in brackets).
    public var address: String
    public var mapping: Mapping?
    public init(address: String, mapping: Mapping?) {
        self.address = address
        self.mapping = mapping
    }
}

/// The HTTP gateway: Hummingbird serving `GatewayResponder` on one address, until stopped.
public final class GatewayServer: Sendable {
    public let sites: GatewaySites
    /// The names served (nil: none are resolved).
    public let names: GatewayNames?
    /// `/announce` for the sites served.
    public let tracker: GatewayTracker
    private let options: GatewayOptions
    private let boundPort = PortBox()
    private let task = Locked<Task<Void, any Error>?>(nil)

    public init(sites: GatewaySites, names: GatewayNames? = nil, options: GatewayOptions) {
        self.sites = sites
        self.names = names
        self.options = options
        tracker = GatewayTracker(sites: sites, peerListeners: options.peerListeners, seeded: options.seededHashes)
    }

    public var port: Int { boundPort.value }

    /// Binds `host:port` (trying the next ports when taken; 0 picks any) and starts serving.
    /// Returns the port bound.
    public func start(host: String, port: Int, attempts: Int = 10) async throws -> Int {
        var lastError: (any Error)?
        for p in (port == 0 ? [0] : Array(port..<min(65536, port + attempts))) {
            do { return try await start(host: host, exactPort: p) } catch {
                lastError = error
                if "\(error)".contains("Address already in use") { continue }
                throw error
            }
        }
        throw lastError!
    }

    /// The server on `host:port` as Hummingbird's Application, a swift-service-lifecycle
    /// Service (run it in a ServiceGroup); `onRunning` is told the port it bound.
    public func application(host: String, port: Int, onRunning: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
        let portBox = boundPort
        let gateway = GatewayResponder(sites: sites, names: names, options: options, port: { portBox.value }, tracker: tracker)
        let counter = RequestCounter<GatewayRequestContext>(factory: options.requestMetrics)
        let responder = CallbackResponder { request, context in
            try await counter.handle(request, context: context, next: gateway.respond)
        }
        var logger = Logger(label: "webseed.gateway")
        logger.logLevel = .critical
        let headTimeout = options.headTimeout
        let open = OpenConnections(limit: options.maxConnections)
        return Application(
            responder: responder,
            server: .http1(configuration: .init(additionalChannelHandlers: [ConnectionLimitHandler(open), HeadDeadlineHandler(timeout: headTimeout)],
                                                idleTimeout: .seconds(75))),
            configuration: .init(address: .hostname(host, port: port), serverName: nil, backlog: 1024, reuseAddress: true),
            onServerRunning: { channel in
                let p = channel.localAddress?.port ?? port
                portBox.set(p)
                await onRunning(p)
            },
            logger: logger
        )
    }

    private func start(host: String, exactPort: Int) async throws -> Int {
        let (stream, continuation) = AsyncStream.makeStream(of: Result<Int, any Error>.self)
        let app = application(host: host, port: exactPort) { continuation.yield(.success($0)) }
        let t = Task {
            do { try await app.run() } catch {
                continuation.yield(.failure(error))
                throw error
            }
        }
        for await outcome in stream {
            switch outcome {
            case .success(let p):
                task.withLock { $0 = t }
                return p
            case .failure(let e):
                throw e
            }
        }
        throw CancellationError()
    }

    public func stop() {
        task.withLock { $0 }?.cancel()
    }
}

/// Closes a connection whose request head does not arrive in time: from the connection's
/// start, and again after each response, the next head must come within `timeout`
/// (checked every few seconds by one timer per connection, so requests cost no timer work).
final class HeadDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let timeout: TimeAmount
    private var waitingSince: NIODeadline?
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { waitingSince = nil }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { waitingSince = .now() }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard timer == nil else { return }
        waitingSince = .now()
        schedule(channel: context.channel, loop: context.eventLoop)
    }

    private func schedule(channel: any Channel, loop: any EventLoop) {
        timer = loop.assumeIsolated().scheduleTask(in: min(timeout, .seconds(5))) { [weak self] in
            guard let self else { return }
            if let since = self.waitingSince, NIODeadline.now() - since >= self.timeout {
                channel.close(promise: nil)
            } else {
                self.schedule(channel: channel, loop: loop)
            }
        }
    }
}

/// How many connections are open, against the most there may be.
final class OpenConnections: Sendable {
    let limit: Int
    private let count = Atomic<Int>(0)
    init(limit: Int) { self.limit = limit }

    /// Counts one more, unless that would pass the limit.
    func admit() -> Bool {
        if count.wrappingAdd(1, ordering: .relaxed).newValue <= limit { return true }
        count.wrappingSubtract(1, ordering: .relaxed)
        return false
    }

    func release() { count.wrappingSubtract(1, ordering: .relaxed) }
}

/// Closes a connection accepted while `OpenConnections` is at its limit (before it is read
/// from: it costs no request buffers), and counts the others until they close.
final class ConnectionLimitHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private let open: OpenConnections
    private var admitted = false
    private var decided = false

    init(_ open: OpenConnections) { self.open = open }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { decide(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        decide(context)
        if admitted { context.fireChannelActive() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if admitted { context.fireChannelRead(data) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if admitted {
            admitted = false
            open.release()
        }
        context.fireChannelInactive()
    }

    private func decide(_ context: ChannelHandlerContext) {
        guard !decided else { return }
        decided = true
        admitted = open.admit()
        if !admitted { context.close(promise: nil) }
    }
}

final class PortBox: Sendable {
    private let port = Locked(0)
    var value: Int { port.withLock { $0 } }
    func set(_ p: Int) { port.withLock { $0 = p } }
}
