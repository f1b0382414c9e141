/// Decides which interested peers are unchoked. A fixed number of upload slots; when more
/// peers are interested than there are slots, every rotation chokes the peer that has been
/// unchoked longest and unchokes the one that has waited longest, so all downloaders
/// progress. (A pure seeder has no download rates to rank peers by.)
struct Choker {
    let slots: Int
    private(set) var unchoked: [ObjectIdentifier: Double] = [:]  // since when
    private(set) var waiting: [ObjectIdentifier] = []            // oldest first

    init(slots: Int) { self.slots = slots }

    /// Returns (peer, choke?) decisions to apply.
    mutating func interest(_ peer: ObjectIdentifier, interested: Bool, now: Double) -> [(ObjectIdentifier, Bool)] {
        if interested {
            guard unchoked[peer] == nil, !waiting.contains(peer) else { return [] }
            if unchoked.count < slots {
                unchoked[peer] = now
                return [(peer, false)]
            }
            waiting.append(peer)
            return []
        }
        return remove(peer, now: now, choke: true)
    }

    mutating func remove(_ peer: ObjectIdentifier, now: Double, choke: Bool = false) -> [(ObjectIdentifier, Bool)] {
        waiting.removeAll { $0 == peer }
        guard unchoked.removeValue(forKey: peer) != nil else { return [] }
        var out: [(ObjectIdentifier, Bool)] = choke ? [(peer, true)] : []
        if !waiting.isEmpty {
            let next = waiting.removeFirst()
            unchoked[next] = now
            out.append((next, false))
        }
        return out
    }

    mutating func rotate(now: Double) -> [(ObjectIdentifier, Bool)] {
        guard !waiting.isEmpty, let (oldest, _) = unchoked.min(by: { $0.value < $1.value }) else { return [] }
        unchoked[oldest] = nil
        let next = waiting.removeFirst()
        unchoked[next] = now
        waiting.append(oldest)
        return [(oldest, true), (next, false)]
    }
}
