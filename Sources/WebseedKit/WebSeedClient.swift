import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import Swarm

/// HTTP range GETs for BEP 19 web seeds, through AsyncHTTPClient: one client for the process
/// (its own event loops, never shut down, like `HTTPClient.shared`) that follows no redirect
/// (`WebSeedSource` does, asking `mayFetch`). Every callback runs on the download's loop.
struct WebSeedClient: WebSeedTransport {
    /// With `--offline`, only URLs on this host.
    let offline: Bool

    static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .disabled
        configuration.timeout = .init(connect: .seconds(10))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    var http: HTTPClient { Self.http }

    func mayFetch(_ url: String) -> Bool {
        guard let parsed = TrackerURL(url), parsed.kind == .http else { return false }
        return !offline || parsed.isOnThisHost
    }

    func get(_ url: String, range: Range<Int64>, on loop: any EventLoop,
             events: NIOLoopBound<(WebSeedResponseEvent) -> Void>) -> @Sendable () -> Void {
        let request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(url: url, method: .GET,
                                             headers: ["Range": "bytes=\(range.lowerBound)-\(range.upperBound - 1)", "User-Agent": "webseed"])
        } catch {
            loop.execute { events.value(.end(error: "unusable URL \(url)")) }
            return {}
        }
        let task = http.execute(request: request, delegate: Delegate(events: events), eventLoop: .delegate(on: loop))
        // A failure ends the answer here: some fail the task without reaching the delegate.
        task.futureResult.whenFailure { error in events.value(.end(error: Delegate.describe(error))) }
        return { task.cancel() }
    }

    /// Hands the answer on as it comes (an error ends it through the task's future).
    final class Delegate: HTTPClientResponseDelegate {
        typealias Response = Void
        let events: NIOLoopBound<(WebSeedResponseEvent) -> Void>
        init(events: NIOLoopBound<(WebSeedResponseEvent) -> Void>) { self.events = events }

        func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
            events.value(.head(status: Int(head.status.code), location: head.headers.first(name: "Location")))
            return task.eventLoop.makeSucceededVoidFuture()
        }

        func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
            events.value(.body(buffer))
            return task.eventLoop.makeSucceededVoidFuture()
        }

        func didFinishRequest(task: HTTPClient.Task<Void>) throws {
            events.value(.end(error: nil))
        }

        static func describe(_ error: any Error) -> String {
            switch error {
            case let e as HTTPClientError where e == .cancelled: "cancelled"
            default: "HTTP failed: \(error)"
            }
        }
    }
}
