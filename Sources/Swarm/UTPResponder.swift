import NIOCore
import NIOPosix

/// webseed speaks BitTorrent over TCP only. libtorrent, by default, tries uTP (BEP 29) first
/// and waits about 3 s for it to time out, then an encrypted TCP handshake, and only then
/// plaintext — seconds before a site starts to load. On the peer port's UDP side this answers
/// a uTP SYN with ST_RESET (the attempt fails at once) and connects back over TCP to the port
/// the SYN came from (libtorrent binds uTP and TCP to the same port), so a download starts
/// as soon as the peer first tries. Which SYNs get a connect-back is `ConnectBackLimiter`'s
/// decision.
final class UTPResponder: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let connectBack: (SocketAddress) -> Void
    private var limiter = ConnectBackLimiter()

    init(connectBack: @escaping (SocketAddress) -> Void) {
        self.connectBack = connectBack
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        var packet = envelope.data
        // uTP header: type<<4 | version (1), extension, connection_id, timestamp_us,
        // timestamp_difference_us, wnd_size, seq_nr, ack_nr. ST_SYN is type 4.
        guard packet.readableBytes >= 20, let first = packet.readInteger(as: UInt8.self), first == 0x41,
              let _ = packet.readInteger(as: UInt8.self), let connectionID = packet.readInteger(as: UInt16.self),
              let _ = packet.readInteger(as: UInt32.self), let _ = packet.readInteger(as: UInt32.self),
              let _ = packet.readInteger(as: UInt32.self), let seq = packet.readInteger(as: UInt16.self) else { return }

        var reset = context.channel.allocator.buffer(capacity: 20)
        reset.writeInteger(UInt8(0x31))  // ST_RESET, version 1
        reset.writeInteger(UInt8(0))
        reset.writeInteger(connectionID)
        reset.writeInteger(UInt32(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds / 1000))
        reset.writeInteger(UInt32(0))
        reset.writeInteger(UInt32(0))
        reset.writeInteger(UInt16.random(in: 0...UInt16.max))
        reset.writeInteger(seq)
        context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: reset)), promise: nil)

        guard let address = envelope.remoteAddress.ipAddress, let port = envelope.remoteAddress.port else { return }
        let now = Double(NIODeadline.now().uptimeNanoseconds) / 1e9
        if limiter.allow(address: address, port: port, connectionID: connectionID, now: now) {
            connectBack(envelope.remoteAddress)
        }
    }
}

/// Which uTP SYNs get a TCP connect-back. Pure: `now` in, a yes or no out.
///
/// A SYN's source address can be forged, so each connect-back is a TCP connection the
/// sender of a 20-byte datagram can aim at someone else's address and port. The bounds:
/// - a SYN repeated (same address, port and uTP connection id, within `repeatWindow`) is a
///   retransmission: no second connect-back;
/// - each address has a bucket of `perAddressBurst` connect-backs that refills one every
///   `perAddressInterval` s: ten clients starting one after another on one machine each get
///   theirs at once, but one address is sent at most `perAddressBurst` + t /
///   `perAddressInterval` connect-backs in t seconds (12, then one every 3 s: at most 32
///   ports a minute), whatever ports the forged SYNs name;
/// - at most `globalPerSecond` (20) connect-backs a second over all addresses.
/// State is kept only for SYNs that got a connect-back and is pruned by age, so it holds
/// about `globalPerSecond` × (`repeatWindow` + the time a bucket takes to refill) entries
/// at most (some 1,300), however many SYNs arrive.
struct ConnectBackLimiter {
    var perAddressBurst = 12.0
    var perAddressInterval = 3.0
    var globalPerSecond = 20
    var repeatWindow = 30.0

    private struct Attempt: Hashable {
        var address: String
        var port: Int
        var connectionID: UInt16
    }
    private var attempts: [Attempt: Double] = [:]
    /// Per address: tokens left and when they were counted.
    private var buckets: [String: (tokens: Double, at: Double)] = [:]
    private var windowStart = -Double.infinity
    private var inWindow = 0

    init() {}

    mutating func allow(address: String, port: Int, connectionID: UInt16, now: Double) -> Bool {
        let attempt = Attempt(address: address, port: port, connectionID: connectionID)
        if let last = attempts[attempt], now - last < repeatWindow { return false }
        var bucket = buckets[address] ?? (perAddressBurst, now)
        bucket.tokens = min(perAddressBurst, bucket.tokens + max(0, now - bucket.at) / perAddressInterval)
        bucket.at = now
        guard bucket.tokens >= 1 else { return false }
        if now - windowStart >= 1 { windowStart = now; inWindow = 0 }
        guard inWindow < globalPerSecond else { return false }
        inWindow += 1
        bucket.tokens -= 1
        buckets[address] = bucket
        attempts[attempt] = now
        if attempts.count > globalPerSecond * Int(repeatWindow) {
            attempts = attempts.filter { now - $0.value < repeatWindow }
            // A bucket not used for long enough to be full again is the same as none.
            let refill = perAddressBurst * perAddressInterval
            buckets = buckets.filter { now - $0.value.at < refill }
        }
        return true
    }

    /// Entries held (for tests of the memory bound).
    var entries: Int { attempts.count + buckets.count }
}
