import Bencode
import DHTProtocol
import NIOCore
import NIOPosix
import Signing
import Testing
@testable import DHT

/// Hands every datagram of a UDP channel to its DHT service (what WebseedKit's
/// DHTDatagramHandler does for the engine).
private final class ToService: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let service: DHTService
    init(_ service: DHTService) { self.service = service }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        service.handle(Array(buffer: envelope.data), from: envelope.remoteAddress)
    }
}

/// Real UDP sockets on 127.0.0.1: nodes of webseed alone store and serve a site's item.
@Suite struct DHTServiceItemTests {
    @Test func webseedNodesAloneStoreAndServeAnItem() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var channels: [any Channel] = []
        var failure: (any Error)?
        do { try await Self.run(group, &channels) } catch { failure = error }
        for c in channels { try? await c.close().get() }
        try? await group.shutdownGracefully()
        if let failure { throw failure }
    }

    private static func run(_ group: MultiThreadedEventLoopGroup, _ channels: inout [any Channel]) async throws {
        var services: [DHTService] = []
        for i in 0..<6 {
            let loop = group.next()
            let bootstrap = channels.last.flatMap { $0.localAddress?.port }.map { [Endpoint(ip: IPAddress("127.0.0.1")!, port: UInt16($0))] } ?? []
            let service = DHTService(loop: loop, bootstrap: bootstrap, statePath: nil)
            let channel = try await DatagramBootstrap(group: loop)
                .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(ToService(service)) } }
                .bind(host: "127.0.0.1", port: 0).get()
            service.attach(channel)
            services.append(service)
            channels.append(channel)
            _ = i
        }
        // Joined: each node knows at least one other (a condition polled, at most 4 s).
        for s in services {
            var known = 0
            for _ in 0..<200 where known == 0 {
                known = await s.nodeCount()
                if known == 0 { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(known > 0)
        }
        let key = try Ed25519PrivateKey.generate()
        let one = try MutableItem(signing: .dictionary(BDictionary([("ih", .bytes([UInt8](repeating: 1, count: 20)))])), seq: 1,
                                  salt: Array("site".utf8), with: key)
        let put = await services[5].put(.mutable(one))
        #expect(put.sentTo >= 1 && put.found == .mutable(one))
        let read = await services[0].item(key: key.publicKey, salt: Array("site".utf8))
        #expect(read == one)
        // The next version replaces it; an older one cannot come back.
        let two = try MutableItem(signing: .string("v2"), seq: 2, salt: Array("site".utf8), with: key)
        _ = await services[2].put(.mutable(two))
        let stale = await services[3].put(.mutable(one))
        #expect(stale.found == .mutable(two))
        #expect(await services[1].item(key: key.publicKey, salt: Array("site".utf8)) == two)
        #expect(await services[1].item(key: key.publicKey) == nil)  // another salt is another item

        // A fresh node asked for the item at once, before it has heard from anyone, waits to
        // join rather than ending its lookup empty-handed (it used to find nothing).
        let loop = group.next()
        let late = DHTService(loop: loop, bootstrap: [Endpoint(ip: IPAddress("127.0.0.1")!, port: UInt16(channels[5].localAddress!.port!))],
                              statePath: nil)
        let channel = try await DatagramBootstrap(group: loop)
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(ToService(late)) } }
            .bind(host: "127.0.0.1", port: 0).get()
        channels.append(channel)
        late.attach(channel)
        #expect(await late.item(key: key.publicKey, salt: Array("site".utf8)) == two)
        services.append(late)

        for s in services { await s.stop() }
        #expect(await services[4].item(key: key.publicKey) == nil)  // a stopped service answers at once
    }
}
