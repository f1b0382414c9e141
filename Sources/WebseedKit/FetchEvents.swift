import Dispatch
import Metainfo
import Swarm

/// What `get` says as its download goes.
extension EventSink {
    func fetchEvent(_ e: FetchEvent) {
        switch e {
        case .metadata(let m, let directory, let from):
            emitEvent(["event": "metadata", "name": .string(m.name), "files": JSON(m.files.count), "bytes": .number(m.totalSize),
                  "v2_infohash": JSON(m.v2InfoHash?.hex), "v1_infohash": JSON(m.v1InfoHash?.hex), "from": JSON(from),
                  "directory": .string(directory)],
                 text: "\(visible(m.name)): \(m.files.count) files, \(formatBytes(m.totalSize))\(from.map { " (metadata from \(visible($0)))" } ?? "") → \(visible(directory))")
        case .resumed(let directory, let pieces, let of, let fromRecord, let rechecked):
            emitEvent(["event": "resumed", "directory": .string(directory), "pieces": JSON(pieces), "of": JSON(of), "from_record": JSON(fromRecord), "rechecked": JSON(rechecked)],
                 text: pieces > 0 ? "already on disk: \(pieces)/\(of) pieces (\(fromRecord) from the resume record, \(rechecked) hashed again)" : nil)
        case .peerBanned(let address, let reason):
            warning("banned \(address): \(reason)", object: ["event": "peer_banned", "address": .string(address), "reason": .string(reason.description)])
        case .hashFailed(let piece):
            // Counted in the metrics; a ban, when there is one, is the line a person reads.
            emitEvent(["event": "hash_failed", "piece": JSON(piece)], text: nil)
        case .webSeedDropped(let url, let reason, let retryIn):
            var object: [String: JSON] = ["event": "web_seed_dropped", "url": .string(url), "reason": .string(reason)]
            if let retryIn { object["retry_in"] = .double(retryIn) }
            warning("web seed \(visible(url)) dropped: \(reason)\(retryIn.map { "; trying it again in \($0 >= 1 ? String(Int($0.rounded())) : oneDecimal($0)) s" } ?? "")", object: object)
        case .recordUnusable(let problem):
            warning("\(problem.description); what was on disk was hashed again")
        case .complete(let m, let directory, let seconds):
            emitEvent(["event": "complete", "name": .string(m.name), "directory": .string(directory), "files": JSON(m.files.count),
                  "bytes": .number(m.totalSize), "seconds": .double(seconds)],
                 text: "complete: \(m.files.count) files, \(formatBytes(m.totalSize)) in \(oneDecimal(seconds)) s → \(visible(directory))")
        case .peersLearned(let from, let peers, let refused):
            let addresses = peers.map { PeerAddress(host: $0.host, port: $0.port).description }
            let refusedText = refused > 0 ? " (\(refused) refused)" : ""
            emitEvent(["event": "pex_peers", "from": .string(from), "peers": .array(addresses.map { .string($0) }), "refused": JSON(refused)],
                      text: "\(from) named \(peers.count) new peer\(peers.count == 1 ? "" : "s") by PEX\(refusedText)")
        case .failed:
            break  // reported once, as the command's error
        }
    }

    func progress(_ p: FetchProgress, rate: Double, terminal: Bool) {
        if json {
            emitEvent(["event": "progress", "verified": .number(p.verified), "total": .number(p.total), "pieces": JSON(p.pieces),
                  "of": JSON(p.pieceCount), "peers": JSON(p.peers), "rate": .double(rate)], text: nil)
        } else if terminal {
            let eta = rate > 0 && p.total > p.verified ? " ETA \(Int((Double(p.total - p.verified) / rate).rounded(.up))) s" : ""
            let what = p.hasMetadata ? "\(formatBytes(p.verified)) / \(formatBytes(p.total))" : "fetching metadata"
            redraw("\(what)  \(formatBytes(Int64(rate)))/s  peers \(p.peers)\(eta)")
        }
    }

    func seeding() {
        emitEvent(["event": "seeding"], text: "seeding (Ctrl-C to stop)")
    }

    func stopped(downloaded: Int64, uploaded: Int64, complete: Bool) {
        emitEvent(["event": "stopped", "downloaded": .number(downloaded), "uploaded": .number(uploaded), "complete": .bool(complete)],
             text: "stopped; downloaded \(formatBytes(downloaded))\(complete ? "" : " (incomplete: run the same command again to resume)")")
    }
}

/// Prints progress once a second while the download runs.
final class ProgressReporter: @unchecked Sendable {
    private let handle: FetchHandle
    private let log: EventSink
    private let terminal: Bool
    private var timer: (any DispatchSourceTimer)?
    private var last: (Int64, UInt64) = (0, DispatchTime.now().uptimeNanoseconds)

    init(handle: FetchHandle, log: EventSink, terminal: Bool) {
        self.handle = handle
        self.log = log
        self.terminal = terminal
    }

    func start() {
        guard log.json || terminal else { return }
        let t = DispatchSource.makeTimerSource(queue: .global())
        t.schedule(deadline: .now() + .seconds(1), repeating: .seconds(1))
        t.setEventHandler { [weak self] in self?.report() }
        t.resume()
        timer = t
    }

    func stop() {
        timer?.cancel()
        if terminal { log.redraw("") }
    }

    private func report() {
        let p = handle.progress
        guard !p.complete else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        let rate = Double(p.downloaded - last.0) / max(1e-3, Double(now - last.1) / 1e9)
        last = (p.downloaded, now)
        log.progress(p, rate: rate, terminal: terminal)
    }
}
