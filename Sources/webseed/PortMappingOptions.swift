import ArgumentParser
import WebseedKit

/// `--offline`, as `seed`, `get` and `gateway` describe it.
let offlineHelp: ArgumentHelp = "Keep every discovery mechanism on this host: no public DHT routers, trackers, UPnP/NAT-PMP port mapping or local discovery."

/// Router port mapping options shared by `seed` and `gateway`.
struct PortMappingOptions: ParsableArguments {
    @Flag(name: .customLong("no-upnp"), help: "Do not map ports on the router (neither UPnP nor NAT-PMP). --offline implies it.")
    var noUPnP = false

    @Option(name: .customLong("upnp-lease"), help: "Lease asked of the router for each mapping, in seconds (renewed at half, and at least every 5 minutes).")
    var lease: Int = 3600

    func validate() throws {
        guard (4...604_800).contains(lease) else { throw ValidationError("--upnp-lease must be between 4 and 604800 seconds") }
    }

    /// nil with --no-upnp (the engine also skips mapping with --offline or a loopback listener).
    var settings: EngineConfiguration.PortMapping? {
        guard !noUPnP else { return nil }
        var s = EngineConfiguration.PortMapping()
        s.lease = lease
        return s
    }
}
