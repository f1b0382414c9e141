import ArgumentParser
import WebseedKit

/// Limits of the HTTP gateway, for `seed` and `gateway`.
struct HTTPServerOptions: ParsableArguments {
    @Option(name: .customLong("max-connections"), help: "HTTP connections open at once (default 512); one more is closed as soon as it is accepted. Each holds at most about 1.8 MB while it streams a large file.")
    var maxConnections = 512

    func apply(to settings: inout EngineConfiguration.Gateway) throws {
        guard maxConnections >= 1, maxConnections <= 1_000_000 else { throw ValidationFailure("--max-connections must be between 1 and 1000000") }
        settings.maxConnections = maxConnections
    }
}
