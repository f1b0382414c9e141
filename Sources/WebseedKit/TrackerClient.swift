import Locking
import AsyncHTTPClient
import NIOCore
import NIOPosix
import TrackerProtocol

/// One torrent as the tracker client announces it.
struct TrackedTorrent: Sendable {
    /// For events.
    var name: String
    /// The 20-byte hashes it is known by (a hybrid's v1 hash and its truncated v2 hash are
    /// announced separately: a tracker knows each as its own swarm).
    var hashes: [[UInt8]]
    /// Announce URLs in tiers (the torrent's announce-list, a magnet's `tr=`, `--tracker`).
    var tiers: [[String]]
    /// The TCP port peers reach this host on (read at each announce: a router mapping may move it).
    var port: @Sendable () -> Int
    var stats: @Sendable () -> (uploaded: Int64, downloaded: Int64, left: Int64)
    /// Where the peers a tracker names go (nil: a seeded site, whose peers come to it).
    var found: (@Sendable ([PeerAddress]) -> Void)?
}

/// Announces torrents to their trackers (BEP 3 over HTTP through AsyncHTTPClient, BEP 15
/// over UDP) and hands the peers they name on. `TrackerTiers` decides which tracker and
/// when; this class only carries the announces out, one task per announced hash.
/// With `--offline`, only trackers on this host are used.
final class TrackerClient: Sendable {
    private let log: EventSink
    private let offline: Bool
    private let http: HTTPClient
    private let peerID: [UInt8]
    private let key = UInt32.random(in: 0...UInt32.max)
    /// The UDP sockets, one per address family (IPv6 trackers: BEP 15 over IPv6), made on first use.
    private let udp = Locked<[Bool: Task<UDPTrackerSocket, any Error>]>([:])
    /// UDP connection ids by tracker address, with when they were given (BEP 15: one minute).
    private let connections = Locked<[String: (id: UInt64, at: ContinuousClock.Instant)]>([:])

    private struct Loop {
        var torrent: TrackedTorrent
        var hash: [UInt8]
        var tiers: TrackerTiers
        var task: Task<Void, Never>?
        /// `completed` was asked for (once per download).
        var wasComplete = false
    }
    private struct State {
        var loops: [[UInt8]: Loop] = [:]
        /// `completed` and withdrawn `stopped` announces under way (finished before shutting down).
        var completing: [Task<Void, Never>] = []
        var stopped = false
    }
    private let state = Locked(State())
    private let started = ContinuousClock.now

    /// Seconds a single HTTP announce or UDP exchange may take.
    static let requestTimeout: Double = 10

    init(log: EventSink, offline: Bool) {
        self.log = log
        self.offline = offline
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(Int64(Self.requestTimeout)))
        // Redirects are followed here, not by the client, so that --offline can refuse one
        // that leaves this host before anything is sent there.
        configuration.redirectConfiguration = .disallow
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        peerID = Array("-WS0010-".utf8) + (0..<12).map { _ in UInt8.random(in: 0...255) }
    }

    /// The client's clock, in seconds: what `TrackerTiers` and the statuses are stamped with.
    var now: Double { (ContinuousClock.now - started) / .seconds(1) }

    /// The state of every tracker of every announced hash (the status page).
    var statuses: [(hash: [UInt8], name: String, tracker: TrackerTiers.Status)] {
        state.withLock { s in s.loops.values.flatMap { l in l.tiers.trackers.map { (l.hash, l.torrent.name, $0) } } }
    }

    /// Starts announcing `torrent` (a hash already announced is left as it is).
    func track(_ torrent: TrackedTorrent) {
        var usable: [[String]] = []
        for tier in torrent.tiers {
            var kept: [String] = []
            for text in tier {
                guard let url = TrackerURL(text) else {
                    log.trackerSkipped(text, reason: "webseed announces to http://, https:// and udp:// trackers only")
                    continue
                }
                if offline, !url.isOnThisHost {
                    log.trackerSkipped(text, reason: "--offline: only trackers on this host are used")
                    continue
                }
                kept.append(text)
            }
            if !kept.isEmpty { usable.append(kept) }
        }
        guard !usable.isEmpty else { return }
        for hash in torrent.hashes where hash.count == 20 {
            let fresh = state.withLock { s -> Bool in
                guard !s.stopped, s.loops[hash] == nil else { return false }
                s.loops[hash] = Loop(torrent: torrent, hash: hash, tiers: TrackerTiers(tiers: usable, now: now))
                return true
            }
            guard fresh else { continue }
            let task = Task { await self.run(hash) }
            state.withLock { $0.loops[hash]?.task = task }
        }
    }

    /// Sends `stopped` to every tracker told `started` (each given at most 3 s), and ends.
    func stop() async {
        let (loops, completing) = state.withLock { s -> ([Loop], [Task<Void, Never>]) in
            s.stopped = true
            return (Array(s.loops.values), s.completing)
        }
        for l in loops { l.task?.cancel() }
        for l in loops { await l.task?.value }
        for t in completing { await t.value }
        await withTaskGroup(of: Void.self) { group in
            for l in loops {
                let jobs = state.withLock { $0.loops[l.hash]?.tiers.stop() ?? [] }
                for job in jobs {
                    group.addTask {
                        if let r = try? await self.announce(job, hash: l.hash, torrent: l.torrent, timeout: 3) {
                            self.log.trackerAnnounced(job, hash: l.hash, name: l.torrent.name, r)
                        }
                    }
                }
            }
        }
        try? await http.shutdown()
        for task in udp.withLock({ Array($0.values) }) { if let socket = try? await task.value { await socket.close() } }
    }

    /// Stops announcing `hashes` (a replaced version of a site): `stopped` goes to each
    /// tracker told `started`, and nothing after.
    func untrack(_ hashes: [[UInt8]]) {
        for hash in hashes {
            guard let l = state.withLock({ $0.loops.removeValue(forKey: hash) }) else { continue }
            l.task?.cancel()
            var tiers = l.tiers
            let jobs = tiers.stop()
            let task = Task {
                await l.task?.value
                for job in jobs {
                    if let r = try? await self.announce(job, hash: hash, torrent: l.torrent, timeout: 3) {
                        self.log.trackerAnnounced(job, hash: hash, name: l.torrent.name, r)
                    }
                }
            }
            state.withLock { $0.completing.append(task) }
        }
    }

    /// A download of `hashes` finished: `completed` goes to each tracker told `started`, now.
    func completed(_ hashes: [[UInt8]]) {
        for hash in hashes {
            let (jobs, torrent) = state.withLock { s -> ([TrackerTiers.Job], TrackedTorrent?) in
                guard var l = s.loops[hash], !s.stopped, !l.wasComplete else { return ([], nil) }
                l.wasComplete = true
                l.tiers.completed(now: now)
                let jobs = l.tiers.due(now: now)
                s.loops[hash] = l
                return (jobs, l.torrent)
            }
            guard let torrent else { continue }
            for job in jobs {
                let task = Task { await self.perform(job, hash: hash, torrent: torrent) }
                state.withLock { $0.completing.append(task) }
            }
        }
    }

    private func run(_ hash: [UInt8]) async {
        while !Task.isCancelled {
            let (jobs, torrent) = state.withLock { s -> ([TrackerTiers.Job], TrackedTorrent?) in
                guard var l = s.loops[hash] else { return ([], nil) }
                let jobs = l.tiers.due(now: now)
                s.loops[hash] = l
                return (jobs, l.torrent)
            }
            guard let torrent else { return }
            await withTaskGroup(of: Void.self) { group in
                for job in jobs {
                    group.addTask { await self.perform(job, hash: hash, torrent: torrent) }
                }
            }
            let next = state.withLock { $0.loops[hash]?.tiers.nextDue }
            // Wake at the next announce (announces `completed` sends itself are in flight, so
            // `due` skips their tracker), and at least every minute.
            let wait = min(60, max(0.05, (next ?? now + 60) - now))
            try? await Task.sleep(for: .milliseconds(Int64(wait * 1000)))
        }
    }

    private func perform(_ job: TrackerTiers.Job, hash: [UInt8], torrent: TrackedTorrent) async {
        do {
            let response = try await announce(job, hash: hash, torrent: torrent, timeout: Self.requestTimeout)
            state.withLock { $0.loops[hash]?.tiers.answered(job, response, now: now) }
            log.trackerAnnounced(job, hash: hash, name: torrent.name, response)
            if let found = torrent.found, !response.peers.isEmpty {
                found(response.peers.map { PeerAddress(host: $0.host, port: Int($0.port)) })
            }
        } catch {
            // Shutting down: an announce cut short is no tracker's failure.
            if Task.isCancelled || error is CancellationError { return }
            let text = Self.describe(error)
            state.withLock { $0.loops[hash]?.tiers.failed(job, error: text, now: now) }
            log.trackerFailed(job, hash: hash, name: torrent.name, error: text)
        }
    }

    private func announce(_ job: TrackerTiers.Job, hash: [UInt8], torrent: TrackedTorrent, timeout: Double) async throws -> AnnounceResponse {
        var a = Announce(infoHash: hash, peerID: peerID, port: UInt16(clamping: torrent.port()))
        let stats = torrent.stats()
        a.uploaded = stats.uploaded
        a.downloaded = stats.downloaded
        a.left = stats.left
        a.event = job.event
        a.key = key
        a.numWant = job.event == .stopped ? 0 : 50
        guard let url = TrackerURL(job.url) else { throw TrackerError.malformed("not a tracker URL") }
        switch url.kind {
        case .http:
            let deadline = NIODeadline.now() + .milliseconds(Int64(timeout * 1000))
            var target = HTTPTracker.url(job.url, a)
            for _ in 0...Self.maxRedirects {
                var request = HTTPClientRequest(url: target)
                // One request per connection, as trackers expect: opentracker answers HTTP/1.1
                // without `Connection: close` and then closes, so a pooled connection would fail
                // the next announce (`remoteConnectionClosed`, seen when a hybrid's two hashes are
                // announced at once). libtorrent sends the same header.
                request.headers.add(name: "Connection", value: "close")
                let response = try await http.execute(request, deadline: deadline)
                if let next = try redirect(response, from: target) {
                    target = next
                    continue
                }
                guard response.status == .ok else { throw TrackerRequestError.http(status: Int(response.status.code)) }
                let body = try await response.body.collect(upTo: TrackerLimits.maxResponseSize)
                return try HTTPTracker.response(Array(buffer: body))
            }
            throw TrackerRequestError.redirect("more than \(Self.maxRedirects) redirects")
        case .udp:
            return try await announceUDP(a, url: url, timeout: timeout)
        }
    }

    /// One readable line for why an announce failed.
    static func describe(_ error: any Error) -> String {
        switch error {
        case let e as TrackerError: e.description
        case let e as TrackerRequestError: e.description
        case is NIOTooManyBytesError: "the answer is over \(TrackerLimits.maxResponseSize >> 10) KiB"
        case let e as HTTPClientError where e == .deadlineExceeded || e == .readTimeout: "no answer in time"
        case let e as HTTPClientError where e == .connectTimeout: "no connection in time"
        default: "\(error)"
        }
    }

    /// Redirects an announce follows (as libtorrent does, a few).
    static let maxRedirects = 3

    /// Where a 3xx answer sends the announce (its `Location`, absolute or from the root), or
    /// nil for any other answer. Only to another http(s) tracker, and with --offline only to
    /// one on this host.
    private func redirect(_ response: HTTPClientResponse, from url: String) throws(TrackerRequestError) -> String? {
        guard [301, 302, 303, 307, 308].contains(response.status.code) else { return nil }
        guard let location = response.headers.first(name: "Location"), !location.isEmpty, location.utf8.count <= 2_048 else {
            throw .redirect("a redirect without a usable Location")
        }
        var next = location
        if location.hasPrefix("/"), !location.hasPrefix("//"), let here = TrackerURL(url) {
            let scheme = url.lowercased().hasPrefix("https://") ? "https" : "http"
            let host = here.host.contains(":") ? "[\(here.host)]" : here.host
            next = "\(scheme)://\(host):\(here.port)\(location)"
        }
        guard let to = TrackerURL(next), to.kind == .http else {
            throw .redirect("a redirect to \(next.prefix(200)), not an HTTP tracker")
        }
        if offline, !to.isOnThisHost { throw .redirect("a redirect to \(to.host), not on this host (--offline)") }
        return next
    }

    private func announceUDP(_ a: Announce, url: TrackerURL, timeout: Double) async throws -> AnnounceResponse {
        let address: SocketAddress
        do { address = try SocketAddress.makeAddressResolvingHost(url.host, port: url.port) } catch {
            throw TrackerRequestError.unresolvable(url.host)
        }
        let ipv6 = address.protocol == .inet6
        let socket = try await udpSocket(ipv6: ipv6)
        let key = "\(url.host):\(url.port)"
        var connection = connections.withLock { c -> UInt64? in
            guard let known = c[key], ContinuousClock.now - known.at < .seconds(60) else { return nil }
            return known.id
        }
        if connection == nil {
            let t = UInt32.random(in: 0...UInt32.max)
            let reply = try await socket.exchange(UDPTracker.connectRequest(transaction: t), to: address, transaction: t, timeout: timeout)
            guard case .connected(let id) = try UDPTracker.reply(reply, transaction: t, ipv6: ipv6) else {
                throw TrackerError.malformed("an announce reply to a connect request")
            }
            connections.withLock { $0[key] = (id, ContinuousClock.now) }
            connection = id
        }
        let t = UInt32.random(in: 0...UInt32.max)
        let reply = try await socket.exchange(UDPTracker.announceRequest(connection: connection!, transaction: t, a),
                                              to: address, transaction: t, timeout: timeout)
        guard case .announced(let response) = try UDPTracker.reply(reply, transaction: t, ipv6: ipv6) else {
            throw TrackerError.malformed("a connect reply to an announce")
        }
        return response
    }

    private func udpSocket(ipv6: Bool) async throws -> UDPTrackerSocket {
        let host = switch (ipv6, offline) {
        case (false, true): "127.0.0.1"
        case (false, false): "0.0.0.0"
        case (true, true): "::1"
        case (true, false): "::"
        }
        let task = udp.withLock { sockets in
            if let t = sockets[ipv6] { return t }
            let made = Task { try await UDPTrackerSocket.open(host: host) }
            sockets[ipv6] = made
            return made
        }
        return try await task.value
    }
}
