import ArgumentParser
import WebseedKit

/// Peer sources beside the DHT, shared by `seed`, `get` and `gateway`: trackers given on the
/// command line, and local service discovery.
struct PeerSourceOptions: ParsableArguments {
    @Option(name: .customLong("tracker"), help: "Announce to this tracker too (http://, https:// or udp://), besides the torrent's own; repeatable. With --offline only trackers on this host are used.")
    var trackers: [String] = []

    @Flag(name: .customLong("no-lsd"), help: "No local service discovery (BEP 14 multicast on the LAN). --offline, and a peer address on loopback, imply it.")
    var noLSD = false

    func apply(to configuration: inout EngineConfiguration) {
        configuration.trackers = trackers
        configuration.localDiscovery = !noLSD
    }
}
