import NIOCore
import NIOPosix
import Testing
@testable import Swarm

#if canImport(Glibc)
import Glibc
#endif

/// The peer listener's families: `everyAddress` takes IPv4 and IPv6 on one port (a socket
/// per family), an IPv6 address IPv6 only, an IPv4 address IPv4 only.
@Suite struct ListenFamiliesTests {
    /// Whether a TCP connection to `host:port` is accepted (a refused one returns false).
    private func connects(_ host: String, _ port: Int) async -> Bool {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(5)).connect(host: host, port: port).get()
            try? await channel.close()
            return true
        } catch {
            return false
        }
    }

    @Test func everyAddressTakesIPv4AndIPv6OnOnePort() async throws {
        let seeder = Seeder()
        let listener = try await seeder.listen(on: everyAddress, port: 0)
        let port = try #require(listener.address.port)
        #expect(listener.address.protocol == .inet)
        #expect(listener.address6?.protocol == .inet6)
        #expect(listener.address6?.port == port)
        #expect(listener.udpChannels.map { $0.localAddress?.protocol } == [.inet, .inet6])
        #expect(listener.udpChannels.allSatisfy { $0.localAddress?.port == port })
        #expect(await connects("127.0.0.1", port))
        #expect(await connects("::1", port))
        await seeder.stop()
    }

    @Test func anIPv6AddressIsIPv6OnlyAndAnIPv4AddressIPv4Only() async throws {
        let seeder = Seeder()
        let six = try await seeder.listen(on: "::1", port: 0)
        let sixPort = try #require(six.address.port)
        #expect(six.udpChannels.count == 1 && six.address6 == nil)
        #expect(await connects("::1", sixPort))
        #expect(!(await connects("127.0.0.1", sixPort)))
        let four = try await seeder.listen(on: "127.0.0.1", port: 0)
        let fourPort = try #require(four.address.port)
        #expect(await connects("127.0.0.1", fourPort))
        #expect(!(await connects("::1", fourPort)))
        await seeder.stop()
    }

    /// The port taken over IPv6 only: the IPv4 side is given back and the next port is
    /// tried, so both families end up on one port.
    @Test func aPortTakenOverIPv6MovesBothFamiliesToTheNextPort() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let v6Only = ChannelOptions.Types.SocketOption(level: .ipv6, name: .ipv6_v6only)
        // A free pair of ports P, P+1 on both families, with P taken on [::] TCP only.
        var blocker: (any Channel)?
        var port = 0
        for _ in 0..<20 where blocker == nil {
            let probe = try await ServerBootstrap(group: group).serverChannelOption(v6Only, value: 1).bind(host: "::", port: 0).get()
            let p = try #require(probe.localAddress?.port)
            if p < 65535 { blocker = probe; port = p } else { try? await probe.close() }
        }
        let taken = try #require(blocker)
        let seeder = Seeder()
        let listener = try await seeder.listen(on: everyAddress, port: port, attempts: 10)
        let bound = try #require(listener.address.port)
        #expect(bound > port)
        #expect(listener.address6?.port == bound)
        #expect(await connects("127.0.0.1", bound))
        #expect(await connects("::1", bound))
        // The IPv4 socket on the taken port was closed again.
        #expect(!(await connects("127.0.0.1", port)))
        await seeder.stop()
        try? await taken.close()
    }
}
