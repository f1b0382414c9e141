import Locking
import NIOCore
import NIOPosix

/// One UDP socket for every BEP 15 exchange of this process: a request goes out and its
/// reply is matched back by transaction id; a reply nobody waits for is dropped.
final class UDPTrackerSocket: Sendable {
    private let channel: any Channel
    private let waiting: Waiting

    final class Waiting: Sendable {
        let continuations = Locked<[UInt32: CheckedContinuation<[UInt8], any Error>]>([:])
        func resume(_ transaction: UInt32, with result: Result<[UInt8], any Error>) {
            continuations.withLock { $0.removeValue(forKey: transaction) }?.resume(with: result)
        }
    }

    private final class Handler: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let waiting: Waiting
        init(waiting: Waiting) { self.waiting = waiting }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var envelope = unwrapInboundIn(data)
            guard envelope.data.readableBytes >= 8, envelope.data.readableBytes <= 65_536,
                  let bytes = envelope.data.readBytes(length: envelope.data.readableBytes) else { return }
            let transaction = UInt32(bytes[4]) << 24 | UInt32(bytes[5]) << 16 | UInt32(bytes[6]) << 8 | UInt32(bytes[7])
            waiting.resume(transaction, with: .success(bytes))
        }
    }

    private init(channel: any Channel, waiting: Waiting) {
        self.channel = channel
        self.waiting = waiting
    }

    /// Binds an ephemeral port on `host` (0.0.0.0, or 127.0.0.1 when only local trackers are used).
    static func open(host: String, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> UDPTrackerSocket {
        let waiting = Waiting()
        let channel = try await DatagramBootstrap(group: group)
            .channelInitializer { $0.pipeline.addHandler(Handler(waiting: waiting)) }
            .bind(host: host, port: 0).get()
        return UDPTrackerSocket(channel: channel, waiting: waiting)
    }

    /// Sends `bytes` to `address` and waits up to `timeout` seconds for the reply to `transaction`.
    func exchange(_ bytes: [UInt8], to address: SocketAddress, transaction: UInt32, timeout: Double) async throws -> [UInt8] {
        let waiting = self.waiting
        let timer = channel.eventLoop.scheduleTask(in: .milliseconds(Int64(timeout * 1000))) {
            waiting.resume(transaction, with: .failure(TrackerRequestError.timedOut))
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { c in
            waiting.continuations.withLock { $0[transaction] = c }
            let envelope = AddressedEnvelope(remoteAddress: address, data: channel.allocator.buffer(bytes: bytes))
            channel.writeAndFlush(envelope).whenFailure { waiting.resume(transaction, with: .failure($0)) }
        }
    }

    func close() async {
        try? await channel.close()
        let pending = waiting.continuations.withLock { all in defer { all = [:] }; return all }
        for c in pending.values { c.resume(throwing: TrackerRequestError.shuttingDown) }
    }
}

enum TrackerRequestError: Error, CustomStringConvertible {
    case timedOut
    case shuttingDown
    case http(status: Int)
    case unresolvable(String)
    case redirect(String)

    var description: String {
        switch self {
        case .timedOut: "no answer in time"
        case .shuttingDown: "shutting down"
        case .http(let status): "HTTP status \(status)"
        case .unresolvable(let host): "cannot resolve \(host)"
        case .redirect(let why): why
        }
    }
}
