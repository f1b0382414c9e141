import Locking
import DHT
import DHTProtocol
import Foundation
import Metainfo
@testable import PortMapping
import Storage
@testable import Swarm
import Testing
@testable import WebseedKit

/// The `--json` events, byte for byte: the Python tests and users parse these names, keys
/// and value types, so a change here is a change to a published format. Each line is what
/// the JSON-lines handler writes for one call; the text handler is checked for where its
/// lines go.
@Suite struct EventFieldsTests {
    /// Everything a sink wrote, by stream.
    final class Output: Sendable {
        let lines = Locked<[(stream: Console.Stream, text: String)]>([])
        var console: Console { Console { stream, text in self.lines.withLock { $0.append((stream, text)) } } }
        var stdout: [String] { lines.withLock { $0.filter { $0.stream == .standardOutput }.map(\.text) } }
        var stderr: [String] { lines.withLock { $0.filter { $0.stream == .standardError }.map(\.text) } }
        func take() -> [String] { lines.withLock { l in defer { l = [] }; return l.map(\.text) } }
    }

    let site: LocalSite
    var m: Metainfo { site.torrent.metainfo }

    init() throws {
        site = try LocalSite(["index.html": Array(repeating: 1, count: 1000)])
    }

    /// The line one call writes with `--json`.
    func json(_ style: EventSink.Style = .serving, _ call: (EventSink) -> Void) -> [String] {
        let out = Output()
        call(EventSink(json: true, style: style, console: out.console))
        #expect(out.stderr.isEmpty, "JSON lines go to stdout only")
        return out.take()
    }

    func q(_ s: String?) -> String { s.map { "\"\($0)\"" } ?? "null" }

    @Test func startingAndStopping() {
        let local = LocalDataVerifier.verify(m, directory: site.dir.path, resumePath: nil)
        let (v1, v2) = (q(m.v1InfoHash?.hex), q(m.v2InfoHash?.hex))
        #expect(json { $0.listening(host: "127.0.0.1", port: 6881) } == [#"{"event":"listening","host":"127.0.0.1","port":6881}"# + "\n"])
        #expect(json { $0.packaged(m, directory: "/srv/site") } == [#"{"directory":"/srv/site","event":"packaged","files":1,"name":"\#(m.name)"}"# + "\n"])
        #expect(json { $0.verified(m, local: local) } == [
            #"{"event":"verified","hashed_files":\#(local.filesHashed),"name":"\#(m.name)","of":\#(local.pieces.count),"pieces":\#(local.pieces.cardinality),"problems":[],"resumed_files":0}"# + "\n"])
        #expect(json { $0.site(m, magnet: "magnet:?xt=x", torrent: "/t/site.torrent", gatewayPort: 8080) } == [
            #"{"event":"site","gateway_url":"http://\#(m.siteID!).localhost:8080/","magnet":"magnet:?xt=x","name":"\#(m.name)","site_id":"\#(m.siteID!)","torrent":"/t/site.torrent","v1_infohash":\#(v1),"v2_infohash":\#(v2),"web_seed":"http://127.0.0.1:8080/ws/\#(m.siteID!)/"}"# + "\n"])
        #expect(json { $0.site(m, magnet: "magnet:?xt=x", torrent: nil, gatewayPort: 8080, gatewayHost: "::") }.first?.contains(#""web_seed":"http://[::1]:8080/ws/\#(m.siteID!)/""#) == true,
                "a gateway on every address gives its loopback form")
        #expect(json { $0.site(m, magnet: "magnet:?xt=x", torrent: nil, gatewayPort: nil) } == [
            #"{"event":"site","gateway_url":null,"magnet":"magnet:?xt=x","name":"\#(m.name)","site_id":"\#(m.siteID!)","torrent":null,"v1_infohash":\#(v1),"v2_infohash":\#(v2),"web_seed":null}"# + "\n"])
        #expect(json { $0.gatewaySite(id: "abc", name: nil, port: 8080) } == [
            #"{"event":"gateway_site","name":null,"site_id":"abc","url":"http://abc.localhost:8080/","web_seed":"http://127.0.0.1:8080/ws/abc/"}"# + "\n"])
        #expect(json { $0.gatewaySite(id: "abc", name: nil, port: 8080, host: "10.0.0.5") } == [
            #"{"event":"gateway_site","name":null,"site_id":"abc","url":"http://abc.localhost:8080/","web_seed":"http://10.0.0.5:8080/ws/abc/"}"# + "\n"])
        #expect(json { $0.gateway(host: "0.0.0.0", port: 8080, single: true) } == [#"{"event":"gateway","host":"0.0.0.0","port":8080,"url":"http://localhost:8080/"}"# + "\n"])
        #expect(json { $0.ready(offline: true) } == [#"{"event":"ready","offline":true}"# + "\n"])
        #expect(json { $0.stopped(uploaded: 1234) } == [#"{"event":"stopped","uploaded":1234}"# + "\n"])
        #expect(json { $0.warning("a \"quoted\"\nline") } == [#"{"event":"warning","message":"a \"quoted\"\nline"}"# + "\n"])
    }

    @Test func peers() {
        #expect(json { $0.seederEvent(.peerConnected(address: "127.0.0.1:5000", torrent: "site", v2: true)) } == [
            #"{"address":"127.0.0.1:5000","event":"peer_connected","site":"site","v2":true}"# + "\n"])
        #expect(json(.downloading) { $0.seederEvent(.peerConnected(address: "127.0.0.1:5000", torrent: "site", v2: false)) } == [
            #"{"address":"127.0.0.1:5000","event":"peer_connected","v2":false}"# + "\n"])
        #expect(json { $0.seederEvent(.peerClosed(address: "127.0.0.1:5000", reason: .closedByPeer)) } == [
            #"{"address":"127.0.0.1:5000","event":"peer_closed","reason":"closed by peer"}"# + "\n"])
        #expect(json { $0.seederEvent(.fileChanged(torrent: "site", path: "a/b.js")) } == [#"{"event":"file_changed","path":"a/b.js","site":"site"}"# + "\n"])
        #expect(json(.downloading) { $0.seederEvent(.fileChanged(torrent: "site", path: "a/b.js")) } == [#"{"event":"file_changed","path":"a/b.js"}"# + "\n"])
    }

    @Test func get() {
        let (v1, v2) = (q(m.v1InfoHash?.hex), q(m.v2InfoHash?.hex))
        let events: [(FetchEvent, String)] = [
            (.metadata(m, directory: "/out", from: "127.0.0.1:1"),
             #"{"bytes":1000,"directory":"/out","event":"metadata","files":1,"from":"127.0.0.1:1","name":"\#(m.name)","v1_infohash":\#(v1),"v2_infohash":\#(v2)}"#),
            (.resumed(directory: "/out", pieces: 3, of: 8, fromRecord: 2, rechecked: 1),
             #"{"directory":"/out","event":"resumed","from_record":2,"of":8,"pieces":3,"rechecked":1}"#),
            (.peerBanned(address: "10.0.0.1", reason: .pieceMismatch("piece 3 does not match")), #"{"address":"10.0.0.1","event":"peer_banned","reason":"piece 3 does not match"}"#),
            (.hashFailed(piece: 3), #"{"event":"hash_failed","piece":3}"#),
            (.recordUnusable(.notARegularFile("/s/x.fetch", kind: "a FIFO")),
             #"{"event":"warning","message":"/s/x.fetch is a FIFO, not a regular file; it was not read (remove it); what was on disk was hashed again"}"#),
            (.complete(m, directory: "/out", seconds: 1.25), #"{"bytes":1000,"directory":"/out","event":"complete","files":1,"name":"\#(m.name)","seconds":1.250}"#),
            (.peersLearned(from: "127.0.0.3:6881", peers: [("127.0.0.2", 7000), ("::1", 7001)], refused: 2),
             #"{"event":"pex_peers","from":"127.0.0.3:6881","peers":["127.0.0.2:7000","[::1]:7001"],"refused":2}"#),
        ]
        for (event, line) in events {
            #expect(json(.downloading) { $0.fetchEvent(event) } == [line + "\n"])
        }
        var p = FetchProgress()
        (p.verified, p.total, p.pieces, p.pieceCount, p.peers) = (500, 1000, 1, 2, 3)
        #expect(json(.downloading) { $0.progress(p, rate: 2048.5, terminal: false) } == [
            #"{"event":"progress","of":2,"peers":3,"pieces":1,"rate":2048.500,"total":1000,"verified":500}"# + "\n"])
        #expect(json(.downloading) { $0.seeding() } == [#"{"event":"seeding"}"# + "\n"])
        #expect(json(.downloading) { $0.stopped(downloaded: 10, uploaded: 20, complete: false) } == [
            #"{"complete":false,"downloaded":10,"event":"stopped","uploaded":20}"# + "\n"])
    }

    @Test func portMapping() {
        let state = MappedState(method: .upnp, router: "http://192.168.1.1:5000/desc.xml", externalAddress: "203.0.113.7", localAddress: "192.168.1.20",
                                mappings: [Mapping(proto: .tcp, internalPort: 6881, externalPort: 6881, lease: 3600)])
        let body = #""external_address":"203.0.113.7","local_address":"192.168.1.20","mappings":[{"external_port":6881,"internal_port":6881,"lease":3600,"protocol":"TCP"}],"method":"upnp","router":"http://192.168.1.1:5000/desc.xml""#
        #expect(json { $0.portMapping(.mapped(state), localHost: "192.168.1.20") } == [#"{"event":"port_mapping",\#(body)}"# + "\n"])
        #expect(json { $0.portMapping(.renewed(state), localHost: "192.168.1.20") } == [#"{"event":"port_mapping_renewed",\#(body)}"# + "\n"])
        #expect(json { $0.portMapping(.removed(state), localHost: "192.168.1.20") } == [#"{"event":"port_mapping_removed",\#(body)}"# + "\n"])
        let failure = PortMappingFailure(reason: .noRouter, method: nil, router: nil, detail: "no UPnP device answered", ports: [PortRequest(.tcp, 6881)])
        let message = EventSink.failureMessage(failure, localHost: "192.168.1.20")
        #expect(json { $0.portMapping(.failed(failure), localHost: "192.168.1.20") } == [
            #"{"detail":"no UPnP device answered","event":"port_mapping_failed","message":"\#(message)","method":null,"reason":"no_router","router":null}"# + "\n"])
    }

    @Test func dht() throws {
        let hash = try #require(NodeID(hex: String(repeating: "ab", count: 20)))
        let peer = try #require(IPAddress("127.0.0.1"))
        let events: [(DHTEvent, String)] = [
            (.started(nodeID: "0011", port: 6881), #"{"event":"dht","host":"127.0.0.1","node_id":"0011","port":6881}"#),
            (.announced(hash: hash, nodes: 8), #"{"event":"dht_announced","hash":"\#(hash.hex)","nodes":8,"site":"site"}"#),
            (.peers(hash: hash, [Endpoint(ip: peer, port: 6881)], seconds: 0.5), #"{"event":"dht_peers","hash":"\#(hash.hex)","ms":500.000,"peers":["127.0.0.1:6881"]}"#),
            (.nodes(12), #"{"count":12,"event":"dht_nodes"}"#),
            (.externalAddress("203.0.113.7"), #"{"event":"dht_external_address","ip":"203.0.113.7"}"#),
        ]
        for (event, line) in events {
            let (object, text) = try #require(describeDHT(event, host: "127.0.0.1", names: [hash: "site"]))
            #expect(json { $0.emitEvent(object, text: text) } == [line + "\n"])
        }
        #expect(json { $0.lookupDone(hash, peers: [Endpoint(ip: peer, port: 6881)]) } == [#"{"event":"lookup_done","found":1,"hash":"\#(hash.hex)"}"# + "\n"])
        #expect(json { $0.lookupDone(hash, peers: nil) } == [#"{"event":"lookup_done","found":0,"hash":"\#(hash.hex)"}"# + "\n"])
    }

    @Test func textLinesAndWarnings() {
        let out = Output()
        let sink = EventSink(json: false, console: out.console)
        sink.listening(host: "127.0.0.1", port: 6881)
        sink.seederEvent(.peerConnected(address: "127.0.0.1:5000", torrent: "site", v2: true))
        sink.fetchEvent(.peerBanned(address: "10.0.0.1", reason: .metadataHash))
        sink.fetchEvent(.hashFailed(piece: 3))
        sink.seederEvent(.fileChanged(torrent: "site", path: "a.js"))
        sink.ready(offline: false)
        #expect(out.stdout == ["listening on 127.0.0.1:6881\n", "ready\n"], "events scripts alone need are not shown")
        #expect(out.stderr == ["webseed: warning: banned 10.0.0.1: metadata does not match the info hash\n",
                               "webseed: warning: site: a.js changed on disk since it was verified; its pieces are no longer served\n"])
        sink.redraw("50%")
        sink.ready(offline: false)
        #expect(out.stdout.suffix(2) == ["\r\u{1b}[K50%", "\r\u{1b}[Kready\n"], "a redrawn line is cleared before the next one")
    }

    @Test func pexTextLine() {
        let out = Output()
        let sink = EventSink(json: false, style: .downloading, console: out.console)
        sink.fetchEvent(.peersLearned(from: "127.0.0.3:6881", peers: [("127.0.0.2", 7000)], refused: 0))
        sink.fetchEvent(.peersLearned(from: "127.0.0.4:6881", peers: [], refused: 4950))
        #expect(out.stdout == ["127.0.0.3:6881 named 1 new peer by PEX\n", "127.0.0.4:6881 named 0 new peers by PEX (4950 refused)\n"])
    }
}
