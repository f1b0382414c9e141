import NIOCore
import PeerWire

/// What happens to one GET of a web seed, in order: a head, body chunks, one end.
public enum WebSeedResponseEvent {
    case head(status: Int, location: String?)
    case body(ByteBuffer)
    /// The answer is over; `error` says why HTTP failed, if it did.
    case end(error: String?)
}

/// HTTP for web seeds (WebseedKit's `WebSeedClient`; tests may fake it). `get` calls
/// `events` on `loop` only, and returns a cancel; redirects are `WebSeedSource`'s to follow.
public protocol WebSeedTransport: Sendable {
    /// Whether a redirect may be followed to `url`.
    func mayFetch(_ url: String) -> Bool
    /// GETs `range` of `url` without following redirects.
    func get(_ url: String, range: Range<Int64>, on loop: any EventLoop,
             events: NIOLoopBound<(WebSeedResponseEvent) -> Void>) -> @Sendable () -> Void
}

extension FetchLink {
    var isWebSeed: Bool { false }
}

/// A BEP 19 web seed in a download: to the machine a peer that has every piece and never
/// chokes (its host is its URL, so a ban names the seed, never another peer on the same
/// address); its requests go to a `WebSeedSource` and its blocks come back as piece
/// messages, verified like any peer's. Lives on the download's loop.
final class WebSeedLink: FetchLink {
    let url: String
    let loop: any EventLoop
    let transport: any WebSeedTransport
    weak var fetch: Fetch?
    var source: WebSeedSource?
    var cancels: [WebSeedSource.JobID: @Sendable () -> Void] = [:]
    var timer: RepeatedTask?
    var closed = false
    /// Whether a block came from it (a seed that worked once is tried again soon).
    var delivered = false

    init(url: String, fetch: Fetch, transport: any WebSeedTransport) {
        self.url = url
        self.fetch = fetch
        self.loop = fetch.loop
        self.transport = transport
    }

    var address: String { url }
    var host: String { url }
    var isV2: Bool { false }
    var fast: Bool { true }
    var isWebSeed: Bool { true }

    /// Joins the download as a seed that lets it ask for anything.
    func join() {
        guard let fetch else { return }
        fetch.joined(self)
        let now = fetch.clock()
        fetch.receive(.haveAll, from: self, now: now)
        fetch.receive(.unchoke, from: self, now: now)
        let bound = NIOLoopBound(self, eventLoop: loop)
        timer = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            let link = bound.value
            guard let now = link.fetch?.clock(), var s = link.source else { return }
            let actions = s.tick(now: now)
            link.source = s
            link.perform(actions)
        }
    }

    func send(_ messages: [PeerMessage]) {
        guard !closed, let fetch else { return }
        var requests: [BlockRequest] = []
        for m in messages {
            switch m {
            case .request(let r): requests.append(r)
            case .cancel(let r): source?.cancel(r)
            default: break
            }
        }
        guard !requests.isEmpty, let m = fetch.metainfo else { return }
        let now = fetch.clock()
        // Silent for a third of the download's timeout (at most 20 s): dropped.
        var s = source ?? WebSeedSource(layout: WebSeedLayout(base: url, metainfo: m), pieceLength: m.pieceLength,
                                        stallTimeout: min(20, fetch.options.timeout / 3), mayFetch: transport.mayFetch, now: now)
        let actions = s.add(requests, now: now)
        source = s
        perform(actions)
    }

    func disconnect(reason: FetchCloseReason) {
        // Both seeds once the download is complete: nothing to say about it.
        stop(reason == .bothSeeds ? nil : reason.description)
    }

    func attach(_ torrent: SeedTorrent) {}

    /// The engine is stopping: every GET ends, nothing is said.
    func shutDown() { stop(nil) }

    // MARK: carrying out

    func perform(_ actions: [WebSeedSource.Action]) {
        for action in actions {
            guard !closed, let fetch else { return }
            switch action {
            case .get(let id, let url, let range):
                let bound = NIOLoopBound<(WebSeedResponseEvent) -> Void>({ [weak self] e in self?.received(e, job: id) }, eventLoop: loop)
                cancels[id] = transport.get(url, range: range, on: loop, events: bound)
            case .deliver(let r, let block):
                delivered = true
                fetch.receive(.piece(piece: r.piece, begin: r.begin, block: block), from: self, now: fetch.clock())
            case .drop(let reason, let transient):
                stop(reason, retry: transient)
            }
        }
    }

    func received(_ event: WebSeedResponseEvent, job: WebSeedSource.JobID) {
        guard !closed, let now = fetch?.clock(), var s = source else { return }
        let actions: [WebSeedSource.Action]
        switch event {
        case .head(let status, let location): actions = s.head(job, status: status, location: location, now: now)
        case .body(let bytes): actions = s.body(job, bytes, now: now)
        case .end(let error):
            cancels[job] = nil
            actions = s.end(job, error: error, now: now)
        }
        source = s
        perform(actions)
    }

    /// Ends every GET and leaves the download; a reason is reported as `webSeedDropped`.
    /// `retry`: the reason may pass, so the download adds the seed again later.
    func stop(_ reason: String?, retry: Bool = false) {
        guard !closed else { return }
        closed = true
        timer?.cancel()
        timer = nil
        for cancel in cancels.values { cancel() }
        cancels.removeAll()
        guard let fetch else { return }
        if let reason {
            let delay = retry ? fetch.retryWebSeed(url, transport: transport, delivered: delivered) : nil
            fetch.onEvent(.webSeedDropped(url: url, reason: reason, retryIn: delay))
        }
        fetch.left(self)
    }
}

extension Fetch {
    /// Adds a BEP 19 web seed as a source of pieces (a magnet's metadata cannot come from it).
    func addWebSeed(_ url: String, transport: any WebSeedTransport) {
        WebSeedLink(url: url, fetch: self, transport: transport).join()
    }

    /// Stops every web seed's GETs, and the retries waiting (the engine is stopping).
    func stopWebSeeds() {
        webSeedsStopped = true
        for task in webSeedRetries.values { task.cancel() }
        webSeedRetries.removeAll()
        for case let link as WebSeedLink in linkList { link.shutDown() }
    }

    /// A web seed dropped for a reason that may pass is added again after
    /// `FetchOptions.webSeedRetry` s, twice that after each further drop without a block
    /// from it in between (at most 8 times as long); never once the download is over or
    /// stopping. Returns the delay, or nil for no retry.
    func retryWebSeed(_ url: String, transport: any WebSeedTransport, delivered: Bool) -> Double? {
        guard options.webSeedRetry > 0, webSeedsWanted else { return nil }
        let drops = delivered ? 1 : (webSeedDrops[url] ?? 0) + 1
        webSeedDrops[url] = drops
        let delay = options.webSeedRetry * Double(1 << min(drops - 1, 3))
        let bound = NIOLoopBound(self, eventLoop: loop)
        webSeedRetries[url]?.cancel()
        webSeedRetries[url] = loop.scheduleTask(in: .nanoseconds(Int64(delay * 1e9))) {
            let fetch = bound.value
            fetch.webSeedRetries[url] = nil
            guard fetch.webSeedsWanted else { return }
            fetch.addWebSeed(url, transport: transport)
        }
        return delay
    }

    /// Web seeds may still join: the download is neither over nor stopping.
    private var webSeedsWanted: Bool { !webSeedsStopped && phase != .complete && phase != .failed }
}

extension FetchHandle {
    /// Downloads from these BEP 19 web seeds too (`url-list`, a magnet's `ws=`, `--web-seed`).
    public func addWebSeeds(_ urls: [String], transport: any WebSeedTransport) {
        guard !urls.isEmpty else { return }
        loop.execute {
            let fetch = self.fetch.value
            for url in urls { fetch.addWebSeed(url, transport: transport) }
        }
    }
}
