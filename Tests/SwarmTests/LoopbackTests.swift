import Foundation
import NIOCore
import Testing
import Hashing
@testable import Swarm

#if canImport(Glibc)
import Glibc
#endif

/// A fake peer on a blocking socket with a receive timeout. It writes protocol bytes by
/// hand (BEP 3), not with webseed's codec.
final class FakePeer {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0 else { close(fd); throw POSIXError(.ECONNREFUSED) }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }

    /// Exactly n bytes, or nil if the connection closed (or timed out) first.
    func receive(_ n: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: n)
        var got = 0
        while got < n {
            let r = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, n - got, 0) }
            if r <= 0 { return nil }
            got += r
        }
        return out
    }

    /// True when the seeder closed the connection (EOF) within the timeout.
    func closedBySeeder() -> Bool {
        var b: UInt8 = 0
        while true {
            let r = recv(fd, &b, 1, 0)
            if r == 0 { return true }
            if r < 0 { return errno == ECONNRESET }
        }
    }

    static func handshake(_ hash: [UInt8], fast: Bool = true) -> [UInt8] {
        [19] + Array("BitTorrent protocol".utf8) + [0, 0, 0, 0, 0, 0x10, 0, fast ? 0x04 : 0] + hash + Array("-XX0001-fakepeer0001".utf8)
    }

    /// Reads one message: (id, payload); nil id for keep-alive.
    func message() -> (UInt8?, [UInt8])? {
        guard let len = receive(4) else { return nil }
        let n = Int(UInt32(len[0]) << 24 | UInt32(len[1]) << 16 | UInt32(len[2]) << 8 | UInt32(len[3]))
        if n == 0 { return (nil, []) }
        guard let body = receive(n) else { return nil }
        return (body[0], Array(body[1...]))
    }
}

private func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }

@Suite(.serialized) struct Loopback {
    let fixture: Fixture
    let seeder: Seeder
    let port: Int

    init() throws {
        fixture = try Fixture(files: ["index.html": content(3, 50_000), "img/a.png": content(4, 20_000)])
        var config = SeederConfiguration()
        config.handshakeTimeout = .milliseconds(500)
        config.maxPeers = 50
        seeder = Seeder(configuration: config)
        seeder.add(fixture.torrent)
        port = try seeder.listen(host: "127.0.0.1", port: 0).port!
    }

    var v2Hash: [UInt8] { Array(fixture.metainfo.v2InfoHash!.bytes.prefix(20)) }

    @Test func aPeerDownloadsAVerifiedBlock() throws {
        defer { seeder.shutdown() }
        let peer = try FakePeer(port: port)
        peer.send(FakePeer.handshake(v2Hash))
        let reply = try #require(peer.receive(68))
        #expect(Array(reply[28..<48]) == v2Hash)
        #expect(reply[25] & 0x10 != 0 && reply[27] & 0x04 != 0)  // extension protocol, fast
        #expect(peer.message()?.0 == 14)  // have all
        #expect(peer.message()?.0 == 20)  // extension handshake
        peer.send(be32(1) + [2])          // interested
        #expect(peer.message()?.0 == 1)   // unchoke
        // Tree order puts img/a.png (pieces 0-1) before index.html.
        let index = fixture.metainfo.files.first { $0.pathString == "index.html" }!
        let piece = UInt32(index.offset / 16_384) + 1
        peer.send(be32(13) + [6] + be32(piece) + be32(0) + be32(16_384))
        let (id, payload) = try #require(peer.message())
        #expect(id == 7)
        #expect(Array(payload[0..<8]) == be32(piece) + be32(0))
        #expect(Array(payload[8...]) == Array(fixture.bytes("index.html")[16_384..<32_768]))
        // The tail of the last piece of a file is zero padding, served as zeros.
        peer.send(be32(13) + [6] + be32(piece + 2) + be32(0) + be32(16_384))
        let (_, tail) = try #require(peer.message())
        #expect(Array(tail[8..<(8 + 50_000 - 3 * 16_384)]) == Array(fixture.bytes("index.html")[(3 * 16_384)...]))
        #expect(tail[(8 + 50_000 - 3 * 16_384)...].allSatisfy { $0 == 0 })
    }

    @Test func aFileEditedUnderTheSeederIsNeverServed() throws {
        defer { seeder.shutdown() }
        var changed = fixture.bytes("index.html")
        changed[20_000] ^= 0xff
        try Data(changed).write(to: fixture.dir.appendingPathComponent("index.html"))
        let peer = try FakePeer(port: port)
        peer.send(FakePeer.handshake(v2Hash))
        _ = peer.receive(68); _ = peer.message(); _ = peer.message()
        peer.send(be32(1) + [2])
        #expect(peer.message()?.0 == 1)
        let index = fixture.metainfo.files.first { $0.pathString == "index.html" }!
        let piece = UInt32(index.offset / 16_384) + 1  // covers byte 20,000 of the file
        peer.send(be32(13) + [6] + be32(piece) + be32(0) + be32(16_384))
        let (id, payload) = try #require(peer.message())
        #expect(id == 16)  // reject, not the changed bytes
        #expect(payload == be32(piece) + be32(0) + be32(16_384))
        #expect(fixture.torrent.changedFiles == ["index.html"])
        #expect(!fixture.torrent.pieces.contains(Int(piece)))
    }

    @Test(arguments: [
        ("unknown info hash", FakePeer.handshake([UInt8](repeating: 0x55, count: 20))),
        ("encrypted handshake", (0..<96).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }),
        ("HTTP", Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)),
    ])
    func strangersAreClosedAtOnce(_ label: String, _ bytes: [UInt8]) throws {
        defer { seeder.shutdown() }
        let peer = try FakePeer(port: port)
        peer.send(bytes)
        #expect(peer.closedBySeeder(), "\(label)")
    }

    @Test func absurdLengthPrefixesAndSilentHandshakesCostOnlyTheirConnection() throws {
        defer { seeder.shutdown() }
        let huge = try FakePeer(port: port)
        huge.send(FakePeer.handshake(v2Hash) + [0xff, 0xff, 0xff, 0xff, 7])
        let silent = (0..<20).compactMap { _ in try? FakePeer(port: port) }
        let good = try FakePeer(port: port)
        good.send(FakePeer.handshake(v2Hash))
        #expect(good.receive(68) != nil)
        #expect(huge.receive(68) != nil)
        #expect(huge.closedBySeeder())
        for s in silent { #expect(s.closedBySeeder()) }  // the handshake timeout (0.5 s here)
        _ = good.message(); _ = good.message()
        good.send(be32(1) + [2])
        #expect(good.message()?.0 == 1)  // still served
    }

    @Test func aFloodOfSilentSocketsCannotLockARealPeerOut() throws {
        defer { seeder.shutdown() }
        // maxPeers is 50 here: 80 silent sockets, then a real handshake.
        let flood = (0..<80).compactMap { _ in try? FakePeer(port: port) }
        let good = try FakePeer(port: port)
        good.send(FakePeer.handshake(v2Hash))
        #expect(good.receive(68) != nil)
        #expect(good.message()?.0 == 14)
        #expect(flood.count == 80)
        #expect(seeder.peerCount <= 50)
    }

    @Test func aUTPSynIsResetAndAnsweredWithATCPConnectionBack() throws {
        defer { seeder.shutdown() }
        // A peer's TCP listener and UDP socket on one port, as libtorrent has them.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(listener); close(udp) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, len) } }
        listen(listener, 4)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) } }
        #expect(withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(udp, $0, len) } } == 0)
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(udp, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))

        // ST_SYN (BEP 29): type 4, version 1, connection id 0x1234, seq_nr 0x0042.
        let syn: [UInt8] = [0x41, 0, 0x12, 0x34] + [UInt8](repeating: 0, count: 12) + [0x00, 0x42, 0, 0]
        var to = sockaddr_in()
        to.sin_family = sa_family_t(AF_INET)
        to.sin_port = in_port_t(UInt16(port).bigEndian)
        to.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = syn.withUnsafeBytes { b in withUnsafePointer(to: &to) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            sendto(udp, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } }
        var reply = [UInt8](repeating: 0, count: 64)
        let n = reply.withUnsafeMutableBytes { recv(udp, $0.baseAddress, 64, 0) }
        #expect(n == 20)
        #expect(reply[0] == 0x31 && reply[2] == 0x12 && reply[3] == 0x34 && reply[18] == 0x00 && reply[19] == 0x42)  // ST_RESET, same id, ack = seq

        let conn = accept(listener, nil, nil)
        #expect(conn >= 0)
        defer { close(conn) }
        setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var hs = [UInt8](repeating: 0, count: 68)
        var got = 0
        while got < 68 {
            let r = hs.withUnsafeMutableBytes { recv(conn, $0.baseAddress! + got, 68 - got, 0) }
            if r <= 0 { break }
            got += r
        }
        #expect(got == 68 && Array(hs[0..<20]) == [19] + Array("BitTorrent protocol".utf8) && Array(hs[28..<48]) == v2Hash)
    }

    @Test func aHybridReachedByItsV1HashUpgradesWhenAsked() throws {
        defer { seeder.shutdown() }
        let v1 = fixture.metainfo.v1InfoHash!.bytes
        var hs = FakePeer.handshake(v1)
        hs[27] |= 0x10  // BEP 52 upgrade bit
        let upgrading = try FakePeer(port: port)
        upgrading.send(hs)
        #expect(Array(try #require(upgrading.receive(68))[28..<48]) == v2Hash)
        let plain = try FakePeer(port: port)
        plain.send(FakePeer.handshake(v1))
        #expect(Array(try #require(plain.receive(68))[28..<48]) == v1)
    }
}
