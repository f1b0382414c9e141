import DHTProtocol
import Testing
@testable import DHT

/// The state file keeps both routing tables (BEP 32), and still reads the IPv4-only form.
@Suite struct DHTStateFileFormatTests {
    let v4 = NodeInfo(id: .random(), endpoint: Endpoint(ip: IPAddress("192.0.2.7")!, port: 6881))
    let v6 = NodeInfo(id: .random(), endpoint: Endpoint(ip: IPAddress("2001:db8::7")!, port: 6882))

    @Test func bothFamiliesAreSavedAndReadBack() throws {
        let id = NodeID.random()
        let bytes = DHTStateFile.encode(id: id, nodes: [v6, v4])
        #expect(bytes.count == 6 + 20 + 2 + 26 + 38)
        let (read, nodes) = try #require(DHTStateFile.decode(bytes[...]))
        #expect(read == id)
        #expect(nodes == [v4, v6])
    }

    @Test func theIPv4OnlyFormIsStillRead() throws {
        let id = NodeID.random()
        let (read, nodes) = try #require(DHTStateFile.decode((Array("WSDHT1".utf8) + id.bytes + v4.compact)[...]))
        #expect(read == id)
        #expect(nodes == [v4])
    }

    @Test func aFileWhoseCountsDoNotAddUpIsRefused() {
        let id = NodeID.random()
        var bytes = DHTStateFile.encode(id: id, nodes: [v4, v6])
        bytes[27] = 2  // says two IPv4 nodes
        #expect(DHTStateFile.decode(bytes[...]) == nil)
        #expect(DHTStateFile.decode(DHTStateFile.encode(id: id, nodes: [v6]).dropLast()) == nil)
        var huge = Array("WSDHT2".utf8) + id.bytes + [0xff, 0xff]
        huge += [UInt8](repeating: 1, count: 26)
        #expect(DHTStateFile.decode(huge[...]) == nil)
    }

    @Test func atMost200NodesOfEachFamilyAreKept() throws {
        let many = (0..<300).map { i in NodeInfo(id: .random(), endpoint: Endpoint(ip: .v6(high: 0x2001_0db8 << 32, low: UInt64(i + 1)), port: 1)) }
        let bytes = DHTStateFile.encode(id: .random(), nodes: many + [v4])
        #expect(bytes.count <= DHTStateFile.maxSize)
        let (_, nodes) = try #require(DHTStateFile.decode(bytes[...]))
        #expect(nodes.filter { $0.endpoint.ip.family == .ipv6 }.count == 200)
        #expect(nodes.filter { $0.endpoint.ip.family == .ipv4 } == [v4])
    }
}
