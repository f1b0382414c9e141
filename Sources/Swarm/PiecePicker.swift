import Merkle
import PeerWire
import Storage

/// Which blocks to ask which peer for. Pure state, no I/O: the fetch tells it what peers
/// have, what was requested, received, verified or lost, and asks it for requests.
///
/// Order of picking for a peer: pieces with a deadline (the gateway asking for a file now),
/// earliest first; then pieces this peer already started; then pieces nobody is working
/// on any more; then new pieces, rarest first (ties broken by position, from a random
/// start so that downloaders spread out). Each piece is worked on by one peer at a time,
/// so a piece that fails verification names its sender. When nothing untouched is left,
/// end-game: blocks already requested from one peer are asked of a second.
public struct PiecePicker {
    public typealias PeerKey = ObjectIdentifier

    public let pieceCount: Int
    /// Bytes of each piece that are fetched (see `PieceCheck.span`).
    let spans: [Int32]
    public private(set) var have: PieceSet
    /// Peers with each piece, counting bitfield peers only; seeds add `seeds` to every piece.
    private var availability: [UInt16]
    private var seeds = 0
    private var partial: [Int: Partial] = [:]
    /// Pieces whose blocks are all in, being verified and written.
    private var busy: Set<Int> = []
    private var deadlines: [Int: Double] = [:]
    /// Pieces that cannot be verified yet (their file's piece layer is still being fetched):
    /// never picked until released.
    private var held: Set<Int> = []
    private var cursor: Int

    struct Partial {
        var requested: [UInt8]
        /// When each block was last asked for (end-game duplicates only slow ones).
        var askedAt: [Double]
        var received: [Bool]
        var receivedCount = 0
        var owner: PeerKey?
        /// Failed verification once while several peers sent blocks: now one peer only.
        var exclusive = false
    }

    public enum PeerHas {
        case all
        case some(PieceSet)
        func contains(_ p: Int) -> Bool {
            switch self {
            case .all: true
            case .some(let s): s.contains(p)
            }
        }
    }

    public init(spans: [Int], have: PieceSet, start: Int? = nil) {
        pieceCount = spans.count
        self.spans = spans.map { Int32($0) }
        self.have = have
        availability = [UInt16](repeating: 0, count: spans.count)
        cursor = start ?? (spans.isEmpty ? 0 : Int.random(in: 0..<spans.count))
    }

    public var isComplete: Bool { have.isFull }
    /// Pieces nobody has started yet.
    public var untouched: Int { pieceCount - have.cardinality - partial.count - busy.count }

    func blockCount(_ p: Int) -> Int { (Int(spans[p]) + blockSize - 1) / blockSize }

    /// End-game asks a second peer only for blocks the first has sat on this long.
    public static let endgameDelay = 0.5

    public func request(piece p: Int, block b: Int) -> BlockRequest {
        let begin = b * blockSize
        return BlockRequest(piece: UInt32(p), begin: UInt32(begin), length: UInt32(min(blockSize, Int(spans[p]) - begin)))
    }

    // MARK: what peers have

    public mutating func peerJoined(_ has: PeerHas) { adjust(has, by: 1) }
    public mutating func peerLeft(_ key: PeerKey, had has: PeerHas) {
        adjust(has, by: -1)
        for (p, var s) in partial where s.owner == key {
            s.owner = nil
            partial[p] = s
        }
    }
    public mutating func peerHas(piece p: Int) {
        if p >= 0, p < pieceCount { availability[p] &+= 1 }
    }

    private mutating func adjust(_ has: PeerHas, by delta: Int) {
        switch has {
        case .all: seeds += delta
        case .some(let set):
            for p in 0..<pieceCount where set.contains(p) {
                availability[p] = UInt16(clamping: Int(availability[p]) + delta)
            }
        }
    }

    // MARK: deadlines (gateway)

    /// Asks for `pieces` first, before `deadline` (earlier deadlines first).
    public mutating func prioritize(_ pieces: Range<Int>, deadline: Double) {
        for p in pieces.clamped(to: 0..<pieceCount) where !have.contains(p) {
            deadlines[p] = min(deadlines[p] ?? deadline, deadline)
        }
    }

    /// Pieces not to pick until `release`d.
    public mutating func hold(_ pieces: Range<Int>) {
        for p in pieces.clamped(to: 0..<pieceCount) where !have.contains(p) { held.insert(p) }
    }

    public mutating func release(_ pieces: Range<Int>) {
        for p in pieces { held.remove(p) }
    }

    // MARK: picking

    /// Up to `count` new requests for a peer that has `has`; `excluded` says which requests
    /// it must not get (already sent to it, or refused by it).
    /// `startNew` false: only pieces already begun or wanted by a deadline (the caller holds
    /// enough partial pieces in memory).
    public mutating func pick(for key: PeerKey, has: PeerHas, count: Int, now: Double, startNew: Bool = true,
                              excluded: (BlockRequest) -> Bool) -> [BlockRequest] {
        var out: [BlockRequest] = []
        var picked = Set<BlockRequest>()
        guard count > 0 else { return out }
        func take(_ p: Int, endgame: Bool = false) {
            guard var s = partial.removeValue(forKey: p) else { return }
            for b in 0..<s.requested.count where out.count < count && !s.received[b] {
                let limit: UInt8 = endgame ? 2 : 1
                guard s.requested[b] < limit, !endgame || now - s.askedAt[b] >= Self.endgameDelay else { continue }
                let r = request(piece: p, block: b)
                if picked.contains(r) || excluded(r) { continue }
                s.requested[b] += 1
                s.askedAt[b] = now
                out.append(r)
                picked.insert(r)
            }
            partial[p] = s
        }
        func start(_ p: Int) {
            let n = blockCount(p)
            partial[p] = Partial(requested: [UInt8](repeating: 0, count: n), askedAt: [Double](repeating: 0, count: n),
                                 received: [Bool](repeating: false, count: n), owner: key)
            take(p)
        }
        // 1. deadlines
        if !deadlines.isEmpty {
            for (p, _) in deadlines.sorted(by: { ($0.value, $0.key) < ($1.value, $1.key) }) where out.count < count {
                guard has.contains(p), !busy.contains(p), !have.contains(p), !held.contains(p) else { continue }
                if let s = partial[p] {
                    if s.exclusive, let o = s.owner, o != key { continue }
                    take(p)
                } else {
                    start(p)
                }
            }
        }
        // 2. our own pieces, 3. abandoned ones
        for (p, s) in partial where out.count < count && s.owner == key { take(p) }
        for (p, s) in partial where out.count < count && s.owner == nil && has.contains(p) {
            var claimed = s
            claimed.owner = key
            partial[p] = claimed
            take(p)
        }
        // 4. new pieces, rarest first
        if out.count < count, untouched > 0, startNew {
            var best = Int.max
            for i in 0..<pieceCount {
                let p = (cursor + i) % pieceCount
                guard isFree(p), has.contains(p) else { continue }
                best = min(best, Int(availability[p]))
                if best == 0 { break }
            }
            if best != Int.max {
                for i in 0..<pieceCount where out.count < count {
                    let p = (cursor + i) % pieceCount
                    guard isFree(p), has.contains(p), Int(availability[p]) == best else { continue }
                    start(p)
                }
            }
        }
        // 5. end-game
        if out.count < count, untouched == 0 {
            for (p, s) in partial where out.count < count && has.contains(p) && !s.exclusive { take(p, endgame: true) }
        }
        return out
    }

    private func isFree(_ p: Int) -> Bool { !have.contains(p) && partial[p] == nil && !busy.contains(p) && !held.contains(p) }

    // MARK: outcomes

    /// A block arrived. Returns nil if it was not wanted (a duplicate, or its piece is
    /// already done), else whether its piece now has every block.
    public mutating func received(_ r: BlockRequest) -> Bool? {
        let p = Int(r.piece), b = Int(r.begin) / blockSize
        guard var s = partial.removeValue(forKey: p) else { return nil }
        guard b < s.received.count, !s.received[b] else { partial[p] = s; return nil }
        s.received[b] = true
        s.receivedCount += 1
        if s.receivedCount == s.received.count {
            busy.insert(p)
            return true
        }
        partial[p] = s
        return false
    }

    /// A request that will not be answered (rejected, choked without the fast extension,
    /// timed out, or its peer left): its block may be asked of someone else.
    public mutating func lost(_ r: BlockRequest) {
        let p = Int(r.piece), b = Int(r.begin) / blockSize
        guard partial[p] != nil, b < partial[p]!.requested.count, partial[p]!.requested[b] > 0 else { return }
        partial[p]!.requested[b] -= 1
    }

    /// A request `key` did not answer in time: its block may be asked of someone else, and
    /// the piece is free for any peer (answering peers pick abandoned pieces before new ones).
    public mutating func timedOut(_ r: BlockRequest, by key: PeerKey) {
        lost(r)
        if partial[Int(r.piece)]?.owner == key { partial[Int(r.piece)]!.owner = nil }
    }

    public mutating func verified(_ p: Int) {
        busy.remove(p)
        partial[p] = nil
        deadlines[p] = nil
        have.insert(p)
    }

    /// The piece failed verification: every block is fetched again, from one peer.
    public mutating func failed(_ p: Int, singleSource: Bool) {
        busy.remove(p)
        let n = blockCount(p)
        var s = Partial(requested: [UInt8](repeating: 0, count: n), askedAt: [Double](repeating: 0, count: n),
                        received: [Bool](repeating: false, count: n), owner: nil)
        s.exclusive = singleSource
        partial[p] = s
    }

    /// Pieces found verified on disk before any peer was asked.
    public mutating func alreadyHave(_ set: PieceSet) {
        for p in 0..<pieceCount where set.contains(p) { verified(p) }
    }
}
