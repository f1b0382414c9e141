import ArgumentParser
import WebseedKit

/// Web seeds (BEP 19) to download from, for `get` and `gateway`.
struct WebSeedOptions: ParsableArguments {
    @Option(name: .customLong("web-seed"), help: "Download from this web seed (BEP 19: an http:// or https:// URL of the files) too, besides the torrent's url-list and the magnet's ws=; repeatable. With --offline only web seeds on this host are used.")
    var webSeeds: [String] = []

    @Option(name: .customLong("web-seed-retry"), help: ArgumentHelp("Seconds before a web seed dropped for a reason that may pass (a failed connection, a stall, a 5xx status) is tried again, doubling while it keeps failing; 0: never.", valueName: "seconds"))
    var webSeedRetry: Double = 30

    func apply(to configuration: inout EngineConfiguration) throws {
        guard webSeedRetry >= 0, webSeedRetry <= 86_400 else { throw ValidationFailure("--web-seed-retry must be between 0 and 86400 seconds") }
        configuration.webSeeds = webSeeds
        configuration.webSeedRetry = webSeedRetry
    }
}
