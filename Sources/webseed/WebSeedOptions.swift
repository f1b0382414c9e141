import ArgumentParser
import WebseedKit

/// Web seeds (BEP 19) to download from, for `get` and `gateway`.
struct WebSeedOptions: ParsableArguments {
    @Option(name: .customLong("web-seed"), help: "Download from this web seed (BEP 19: an http:// or https:// URL of the files) too, besides the torrent's url-list and the magnet's ws=; repeatable. With --offline only web seeds on this host are used.")
    var webSeeds: [String] = []

    func apply(to configuration: inout EngineConfiguration) {
        configuration.webSeeds = webSeeds
    }
}
