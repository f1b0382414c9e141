import Merkle
import PeerWire
import Storage

/// The gateway's waiters, and what the clock decides: request timeouts, queue depths, the
/// resume record's timing, and giving up when nothing arrives.
extension FetchMachine {
    // MARK: gateway

    mutating func want(file: Int, range: Range<Int64>, deadline: Double, waiter: Int, now: Double, _ out: inout [Action]) {
        guard let m = metainfo, file < m.files.count else { return out.append(.reject(waiter: waiter, .invalidMetadata("no such file"))) }
        let f = m.files[file]
        let pl = Int64(m.pieceLength)
        guard f.length > 0, !range.isEmpty else { return out.append(.resolve([waiter])) }
        let first = Int((f.offset + range.lowerBound) / pl)
        let last = Int((f.offset + min(range.upperBound, f.length) - 1) / pl)
        waiters.append((waiter, first..<(last + 1), deadline))
        if known?.check.lacksLayer(file: file) == true {
            layerQueue.prioritize([file])
            sendHashRequests(now: now, &out)
        }
        if var d = takeDownload() {
            d.picker.prioritize(first..<(last + 1), deadline: deadline)
            resolveWaiters(have: d.picker.have, &out)
            refillAll(&d, now: now, &out)
            phase = .downloading(d)
        } else {
            resolveWaiters(&out)
        }
    }

    /// Resolves the waiters whose pieces are all verified (`have`, else what the phase says).
    mutating func resolveWaiters(have given: PieceSet? = nil, _ out: inout [Action]) {
        let have: PieceSet? = switch phase {
        case .downloading(let d), .finishing(let d): d.picker.have
        case .complete(let k, _): PieceSet(count: k.metainfo.pieceCount, full: true)
        default: given
        }
        guard let have, !waiters.isEmpty else { return }
        var done: [Int] = []
        waiters.removeAll { w in
            guard w.pieces.allSatisfy({ have.contains($0) }) else { return false }
            done.append(w.id)
            return true
        }
        if !done.isEmpty { out.append(.resolve(done)) }
    }

    // MARK: time

    mutating func tick(now: Double, _ out: inout [Action]) {
        defer { out.append(.publish) }
        var lost: [(BlockRequest, PeerKey)] = []
        for (key, var peer) in peers {
            // Per-peer queue depth follows its rate: about two seconds of data in flight.
            let rate = Double(peer.window)
            peer.window = 0
            peer.depth = max(64, min(Self.maxQueue, Int(rate * 2 / Double(blockSize))))
            var expired: [BlockRequest] = []
            for (r, at) in peer.outstanding where now - at > Self.requestTimeout { expired.append(r) }
            for r in expired {
                peer.outstanding[r] = nil
                peer.cancelled.insert(r)
            }
            peers[key] = peer
            lost += expired.map { ($0, key) }
            if !expired.isEmpty { out.append(.send(expired.map { .cancel($0) }, to: key)) }
        }
        switch phase {
        case .metadata(var s):
            if let asked = s.asked, now - asked.since > Self.requestTimeout {
                s.refusedBy.insert(asked.from)
                s.asked = nil
                phase = .metadata(s)
                startMetadata(now: now, &out)
            }
        case .layers, .checking:
            layerQueue.expire(now: now)
            sendHashRequests(now: now, &out)
        case .downloading:
            layerQueue.expire(now: now)
            sendHashRequests(now: now, &out)
            var d = takeDownload()!
            for (r, key) in lost { d.picker.timedOut(r, by: key) }
            // What a silent peer held goes to those that answer: it gets nothing new until the next tick.
            let silent = Set(lost.map(\.1))
            for key in peers.keys where !silent.contains(key) { refill(key, &d, now: now, &out) }
            saveRecordIfDue(&d, now: now, &out)
            phase = .downloading(d)
        default:
            break
        }
        checkStalled(now: now, &out)
    }

    mutating func checkStalled(now: Double, _ out: inout [Action]) {
        switch phase {
        case .metadata, .layers, .downloading: break
        default: return
        }
        guard now - lastReceived > options.timeout else { return }
        let seconds = Int(options.timeout.rounded())
        // Web seeds cannot send a magnet's metadata: while it is missing they do not count.
        var metadataPhase = false
        if case .metadata = phase { metadataPhase = true }
        let onlyWebSeeds = !peers.isEmpty && peers.values.allSatisfy(\.info.isWebSeed)
        if peers.isEmpty || (metadataPhase && onlyWebSeeds) {
            var who = options.peerNames.isEmpty ? "none known (give --peer HOST:PORT or a magnet with x.pe=)" : "could not reach \(options.peerNames.joined(separator: ", "))"
            if options.usesDHT { who = (options.peerNames.isEmpty ? "none found on the DHT" : who + ", and none found on the DHT") }
            if options.usesTrackers {
                who = options.peerNames.isEmpty && !options.usesDHT ? "none reachable through the trackers" : who + ", nor reachable through the trackers"
            }
            let why = options.usesWebSeeds && metadataPhase ? "; web seeds cannot send a magnet's metadata (give the .torrent)" : ""
            fail(.noPeers("\(who) within \(seconds) s\(why)"), &out)
        } else if case .metadata = phase {
            fail(.noMetadata(seconds: seconds, peers: peers.count), &out)
        } else {
            fail(.stalled(seconds: seconds, peers: peers.count), &out)
        }
    }
}
