import NIOCore
import NIOPosix

/// webseed speaks BitTorrent over TCP only. libtorrent, by default, tries uTP (BEP 29) first
/// and waits about 3 s for it to time out, then an encrypted TCP handshake, and only then
/// plaintext — seconds before a site starts to load. On the peer port's UDP side this answers
/// a uTP SYN with ST_RESET (the attempt fails at once) and connects back over TCP to the port
/// the SYN came from (libtorrent binds uTP and TCP to the same port), so a download starts
/// as soon as the peer first tries.
///
/// Connect-backs are limited to one per address per 30 s and 20 per second overall, so a
/// forged source address cannot turn this into a way to aim connections at third parties.
final class UTPResponder: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let connectBack: (SocketAddress) -> Void
    private var lastByAddress: [String: NIODeadline] = [:]
    private var windowStart = NIODeadline.now()
    private var inWindow = 0

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

        let now = NIODeadline.now()
        let key = envelope.remoteAddress.ipAddress ?? "?"
        if let last = lastByAddress[key], now - last < .seconds(30) { return }
        if now - windowStart > .seconds(1) { windowStart = now; inWindow = 0 }
        guard inWindow < 20 else { return }
        inWindow += 1
        lastByAddress[key] = now
        if lastByAddress.count > 4096 { lastByAddress = lastByAddress.filter { now - $0.value < .seconds(30) } }
        connectBack(envelope.remoteAddress)
    }
}
