import Locking
import LocalDiscovery
import NIOCore
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Local service discovery (BEP 14) as a peer source: announces this host's torrents to
/// the LAN's multicast groups (239.192.152.143:6771 and [ff15::efc0:988f]:6771) on every
/// multicast interface that has an address, and hands the peers others announce for
/// torrents it wants to the dialer. `LSDSchedule` decides what to send when and what to
/// take in; this service only carries it out. It runs only when the peer listener can be
/// reached from the LAN (not on loopback) and neither `--offline` nor `--no-lsd` is given:
/// then it sends no multicast at all.
final class LocalDiscoveryService: EngineService, PeerSource {
    let context: EngineContext
    private let schedule = Locked(LSDSchedule(cookie: String(UInt64.random(in: 0...UInt64.max), radix: 36)))
    private let lookups = Locked<[[UInt8]: [@Sendable ([PeerAddress]) -> Bool]]>([:])
    private let senders = Locked<[(group: LSDMessage.Group, channel: any Channel)]>([])
    private let port = Locked(0)
    private let started = ContinuousClock.now

    init(context: EngineContext) { self.context = context }

    private var now: Double { (ContinuousClock.now - started) / .seconds(1) }

    func run(started: @escaping @Sendable () -> Void) async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        var receivers: [any Channel] = []
        var outbound: [(LSDMessage.Group, any Channel)] = []
        let devices = multicastDevices()
        for lsdGroup in [LSDMessage.Group.ipv4, .ipv6] {
            let family: NIOBSDSocket.ProtocolFamily = lsdGroup == .ipv4 ? .inet : .inet6
            let onFamily = devices.filter { $0.address?.protocol == family }
            guard !onFamily.isEmpty else { continue }
            do {
                let groupAddress = try SocketAddress(ipAddress: lsdGroup.address, port: LSDMessage.port)
                var bootstrap = DatagramBootstrap(group: group)
                    .channelOption(.socketOption(.so_reuseaddr), value: 1)
                    .channelOption(.socket(SocketOptionLevel(SOL_SOCKET), SocketOptionName(SO_REUSEPORT)), value: 1)
                    .channelInitializer { [self] channel in
                        channel.pipeline.addHandler(Receiver(service: self, group: lsdGroup))
                    }
                if lsdGroup == .ipv6 { bootstrap = bootstrap.channelOption(.socket(SocketOptionLevel(IPPROTO_IPV6), SocketOptionName(IPV6_V6ONLY)), value: 1) }
                let receiver = try await bootstrap.bind(host: lsdGroup == .ipv4 ? "0.0.0.0" : "::", port: LSDMessage.port).get()
                receivers.append(receiver)
                for d in onFamily {
                    try? await (receiver as? any MulticastChannel)?.joinGroup(groupAddress, device: d).get()
                    // One sending socket per interface, so that every LAN the host is on hears it.
                    let sender = try await DatagramBootstrap(group: group).bind(to: d.address!.withPort(0)).get()
                    if let options = sender as? any SocketOptionProvider {
                        if lsdGroup == .ipv4, case .v4(let v4)? = d.address {
                            try await options.setIPMulticastIF(v4.address.sin_addr).get()
                            try await options.setIPMulticastTTL(16).get()
                        } else {
                            try await options.setIPv6MulticastIF(CUnsignedInt(d.interfaceIndex)).get()
                            try await options.setIPv6MulticastHops(16).get()
                        }
                    }
                    outbound.append((lsdGroup, sender))
                }
            } catch {
                context.log.warning("local discovery over \(lsdGroup == .ipv4 ? "IPv4" : "IPv6") is off: \(error)")
            }
        }
        senders.withLock { $0 = outbound }
        context.add(self)
        started()
        await cancelWhenGracefulShutdown { [self] in
            while !Task.isCancelled {
                sendDue()
                let next = schedule.withLock { $0.nextDue }
                let wait = max(0.05, min(60, (next ?? now + 60) - now))
                try? await Task.sleep(for: .milliseconds(Int64(wait * 1000)))
            }
        }
        for c in receivers + outbound.map(\.1) { try? await c.close() }
    }

    private func sendDue() {
        let port = UInt16(clamping: self.port.withLock { $0 })
        guard port > 0 else { return }
        let (batches, cookie) = schedule.withLock { ($0.due(now: now), $0.cookie) }
        guard !batches.isEmpty else { return }
        for (g, channel) in senders.withLock({ $0 }) {
            guard let target = try? SocketAddress(ipAddress: g.address, port: LSDMessage.port) else { continue }
            for hashes in batches {
                let packet = LSDMessage(group: g, port: port, hashes: hashes, cookie: cookie).encoded()
                channel.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: channel.allocator.buffer(bytes: packet)), promise: nil)
            }
        }
        context.log.localDiscoveryAnnounced(hashes: batches.reduce(0) { $0 + $1.count })
    }

    // PeerSource

    func announce(_ hashes: [[UInt8]], port: Int) {
        self.port.withLock { $0 = port }
        schedule.withLock { $0.announce(hashes, now: now) }
        sendDue()  // a new torrent goes out at once if the minute since the last round has passed
    }

    func withdraw(_ hashes: [[UInt8]]) {
        schedule.withLock { $0.stopAnnouncing(hashes) }
    }

    func lookup(_ hashes: [[UInt8]], found: @escaping @Sendable ([PeerAddress]) -> Bool) {
        schedule.withLock { $0.want(hashes) }
        lookups.withLock { l in for h in hashes { l[h, default: []].append(found) } }
    }

    fileprivate func received(_ bytes: [UInt8], from address: SocketAddress, group: LSDMessage.Group) {
        guard let message = try? LSDMessage.parse(bytes, group: group), let ip = address.ipAddress else { return }
        let hashes = schedule.withLock { $0.received(message, from: ip, now: now) }
        guard !hashes.isEmpty else { return }
        let peer = PeerAddress(host: ip, port: Int(message.port))
        context.log.localDiscoveryFound(peer, hashes: hashes)
        for h in hashes {
            let callbacks = lookups.withLock { $0[h] ?? [] }
            let keep = callbacks.filter { $0([peer]) }
            lookups.withLock { $0[h] = keep.isEmpty ? nil : keep }
        }
    }

    private final class Receiver: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let service: LocalDiscoveryService
        let group: LSDMessage.Group
        init(service: LocalDiscoveryService, group: LSDMessage.Group) {
            self.service = service
            self.group = group
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var envelope = unwrapInboundIn(data)
            guard envelope.data.readableBytes <= LSDMessage.maxSize,
                  let bytes = envelope.data.readBytes(length: envelope.data.readableBytes) else { return }
            service.received(bytes, from: envelope.remoteAddress, group: group)
        }
    }
}

/// One address per multicast interface and family (an interface lists each of its addresses
/// as a device): for IPv6 a global or unique-local one over the link-local one, so
/// announces carry an address peers can connect to.
private func multicastDevices() -> [NIONetworkDevice] {
    let all = ((try? System.enumerateDevices()) ?? []).filter { d in
        guard d.multicastSupported, let a = d.address else { return false }
        return !isLoopbackAddress(a)
    }
    var chosen: [String: NIONetworkDevice] = [:]
    for d in all {
        guard let a = d.address else { continue }
        let key = "\(d.interfaceIndex) \(a.protocol == .inet6 ? 6 : 4)"
        let linkLocal = a.ipAddress?.lowercased().hasPrefix("fe80") == true
        if chosen[key] == nil || !linkLocal { chosen[key] = d }
    }
    return chosen.values.sorted { ($0.interfaceIndex, $0.address?.ipAddress ?? "") < ($1.interfaceIndex, $1.address?.ipAddress ?? "") }
}

private func isLoopbackAddress(_ a: SocketAddress) -> Bool {
    guard let ip = a.ipAddress else { return true }
    return ip.hasPrefix("127.") || ip == "::1"
}

extension SocketAddress {
    fileprivate func withPort(_ port: Int) -> SocketAddress {
        var copy = self
        copy.port = port
        return copy
    }
}

extension EventSink {
    /// `lsd_announced`: a round of local discovery announces went out (JSON only).
    func localDiscoveryAnnounced(hashes: Int) {
        emitEvent(["event": "lsd_announced", "hashes": JSON(hashes)], text: nil)
    }

    /// `lsd_peer`: a peer on the LAN announced a torrent this host wants.
    func localDiscoveryFound(_ peer: PeerAddress, hashes: [[UInt8]]) {
        emitEvent(["event": "lsd_peer", "peer": .string(peer.description), "hashes": JSON(hashes.count)],
                  text: "local discovery: \(peer) has \(hashes.count == 1 ? "a torrent" : "\(hashes.count) torrents") wanted here")
    }
}
