import NIOCore
import PeerWire
import Storage

/// Messages from a peer that the download side cares about, and what peers have.
extension FetchMachine {
    mutating func receive(_ message: PeerMessage, from key: PeerKey, now: Double, _ out: inout [Action]) {
        guard peers[key] != nil else { return }
        switch message {
        case .bitfield(let b):
            let bytes = Array(buffer: b)
            if let m = metainfo {
                guard let set = PieceSet(bitfield: bytes, count: m.pieceCount) else { return out.append(.disconnect(key, .malformedBitfield)) }
                setHas(key, .some(set), now: now, &out)
            } else {
                peers[key]!.rawBitfield = bytes
            }
        case .haveAll:
            if metainfo != nil { setHas(key, .all, now: now, &out) } else { peers[key]!.rawAll = true }
        case .haveNone:
            if let m = metainfo { setHas(key, .some(PieceSet(count: m.pieceCount)), now: now, &out) } else { peers[key]!.rawAll = false }
        case .have(let i):
            guard let m = metainfo else { peers[key]!.rawHaves.append(Int(i)); return }
            guard Int(i) < m.pieceCount else { return out.append(.disconnect(key, .havePastEnd(piece: i))) }
            addHave(key, Int(i), now: now, &out)
        case .choke:
            peers[key]!.choking = true
            if !peers[key]!.info.fast {  // without the fast extension, a choke drops every request
                let dropped = peers[key]!.outstanding.keys
                peers[key]!.outstanding.removeAll()
                if var d = takeDownload() {
                    for r in dropped { d.picker.lost(r) }
                    phase = .downloading(d)
                }
            }
        case .unchoke:
            peers[key]!.choking = false
            if var d = takeDownload() {
                refill(key, &d, now: now, &out)
                phase = .downloading(d)
            }
        case .piece(let piece, let begin, let block):
            receivedBlock(key, BlockRequest(piece: piece, begin: begin, length: UInt32(block.readableBytes)), block, now: now, &out)
        case .rejectRequest(let r):
            if peers[key]!.outstanding.removeValue(forKey: r) != nil {
                peers[key]!.refused.insert(r)
                if var d = takeDownload() {
                    d.picker.lost(r)
                    refill(key, &d, now: now, &out)
                    phase = .downloading(d)
                }
            } else {
                peers[key]!.cancelled.remove(r)
            }
        case .hashes(let request, let data):
            hashes(key, request, data, now: now, &out)
        case .hashReject(let request):
            hashRejected(key, request, now: now, &out)
        case .extended(let id, let payload):
            extended(key, id: id, payload: payload, now: now, &out)
        default:
            break
        }
    }

    /// Replaces what a peer has (bitfield, have-all, have-none).
    mutating func setHas(_ key: PeerKey, _ has: PiecePicker.PeerHas, now: Double, _ out: inout [Action]) {
        guard let old = peers[key] else { return }
        peers[key]!.has = has
        guard var d = takeDownload() else { return }
        if let old = old.has { d.picker.peerLeft(key, had: old) }
        d.picker.peerJoined(has)
        updateInterest(key, &d, now: now, &out)
        phase = .downloading(d)
    }

    mutating func addHave(_ key: PeerKey, _ p: Int, now: Double, _ out: inout [Action]) {
        guard let m = metainfo, let peer = peers[key] else { return }
        switch peer.has {
        case .all?: return
        case .some(var set)?:
            guard !set.contains(p) else { return }
            set.insert(p)
            peers[key]!.has = .some(set)
            guard var d = takeDownload() else { return }
            d.picker.peerHas(piece: p)
            if !d.picker.have.contains(p) { updateInterest(key, &d, now: now, &out) }
            phase = .downloading(d)
        case nil:
            var set = PieceSet(count: m.pieceCount)
            set.insert(p)
            setHas(key, .some(set), now: now, &out)
        }
    }

    /// Interested while the peer has a piece we lack.
    mutating func updateInterest(_ key: PeerKey, _ d: inout DownloadState, now: Double, _ out: inout [Action]) {
        guard let peer = peers[key], let has = peer.has else { return }
        let wants: Bool
        switch has {
        case .all: wants = !d.picker.isComplete
        case .some(let set): wants = (0..<set.count).contains { set.contains($0) && !d.picker.have.contains($0) }
        }
        if wants != peer.interested {
            peers[key]!.interested = wants
            out.append(.send([wants ? .interested : .notInterested], to: key))
        }
        if wants { refill(key, &d, now: now, &out) }
    }
}
