import PeerWire

/// Which BEP 52 hash requests for piece layers go to which peer, and in what order. Pure:
/// peers and `now` in, requests to send out. A download asks for the layers of files it
/// needs first (a gateway's file, files found on disk), the rest in the background, at most
/// `perPeer` at a time of each v2 peer (libtorrent 2.0.8 and webseed answer every hash
/// request at once, as it arrives, and limit none: the bound is ours, to keep what one peer
/// owes us small).
struct LayerQueue {
    typealias PeerKey = PiecePicker.PeerKey

    /// Hash requests outstanding per peer. Each answer is at most 512 hashes and their proof
    /// (about 16 KiB), so a peer owes us at most about 1 MiB.
    static let perPeer = 64
    /// Of those, kept for files asked for first (`prioritize`): a gateway's file goes out at
    /// once, not behind a full pipeline of background requests.
    static let reserved = 8
    /// A hash request unanswered this long is asked again (of anyone).
    static let timeout: Double = 30

    struct Sent {
        var file: Int
        var peer: PeerKey
        var at: Double
        /// Sent-order: what is asked again keeps its order.
        var order: Int
    }

    /// Requests not yet sent, in the order they go out.
    private(set) var wanted: [(request: HashRequest, file: Int)]
    private(set) var sent: [HashRequest: Sent] = [:]
    private var sentCount = 0
    /// Peers that rejected a hash request: they are asked nothing more.
    private(set) var refusedBy: Set<PeerKey> = []
    /// Files asked for first (they may use the reserved room).
    private(set) var urgent: Set<Int> = []

    init(_ requests: [(request: HashRequest, file: Int)]) {
        wanted = requests
    }

    var isEmpty: Bool { wanted.isEmpty && sent.isEmpty }

    /// Hash requests outstanding at `peer`.
    func outstanding(_ peer: PeerKey) -> Int { sent.values.reduce(0) { $0 + ($1.peer == peer ? 1 : 0) } }

    /// Whether any request for `file` is still to be sent or answered.
    func isPending(file: Int) -> Bool {
        wanted.contains { $0.file == file } || sent.values.contains { $0.file == file }
    }

    /// Moves the requests of `files` (in this order) ahead of every other unsent one.
    mutating func prioritize(_ files: [Int]) {
        guard !files.isEmpty else { return }
        urgent.formUnion(files)
        var first: [(request: HashRequest, file: Int)] = []
        for file in files { first += wanted.filter { $0.file == file } }
        let set = Set(files)
        wanted = first + wanted.filter { !set.contains($0.file) }
    }

    /// Hands unsent requests, in order, to the peers that can take them (`peers`: v2 peers
    /// in the order to fill them), each up to `perPeer` outstanding (`perPeer - reserved`
    /// for files not asked for first). Returns what to send.
    mutating func assign(to peers: [PeerKey], now: Double) -> [(peer: PeerKey, requests: [HashRequest])] {
        var out: [(peer: PeerKey, requests: [HashRequest])] = []
        for key in peers where !refusedBy.contains(key) {
            var count = outstanding(key)
            var batch: [HashRequest] = []
            while let (r, file) = wanted.first, count < (urgent.contains(file) ? Self.perPeer : Self.perPeer - Self.reserved) {
                wanted.removeFirst()
                sent[r] = Sent(file: file, peer: key, at: now, order: sentCount)
                sentCount += 1
                batch.append(r)
                count += 1
            }
            if !batch.isEmpty { out.append((key, batch)) }
        }
        return out
    }

    /// An answer came: the file it was for, if it was asked of this peer (else nil: ignore it).
    mutating func answered(_ request: HashRequest, by peer: PeerKey) -> Int? {
        guard let s = sent[request], s.peer == peer else { return nil }
        sent[request] = nil
        return s.file
    }

    /// The peer's answer did not prove out, or it refused: the request is asked again first,
    /// of someone else if `refused` (a peer that rejects is asked nothing more).
    mutating func retry(_ request: HashRequest, file: Int, refusedBy peer: PeerKey?) {
        if let peer { refusedBy.insert(peer) }
        wanted.insert((request, file), at: 0)
    }

    /// The peer left: what it owed is asked again, ahead of the rest.
    mutating func peerLeft(_ peer: PeerKey) {
        requeue { $0.peer == peer }
        refusedBy.remove(peer)
    }

    /// Requests unanswered for `timeout`: asked again, ahead of the rest. Returns how many.
    @discardableResult
    mutating func expire(now: Double) -> Int {
        requeue { now - $0.at > Self.timeout }
    }

    /// Puts the sent requests that match back at the front, in the order they were sent.
    @discardableResult
    private mutating func requeue(_ matches: (Sent) -> Bool) -> Int {
        let back = sent.filter { matches($0.value) }.sorted { $0.value.order < $1.value.order }
        for (r, _) in back { sent[r] = nil }
        wanted.insert(contentsOf: back.map { ($0.key, $0.value.file) }, at: 0)
        return back.count
    }
}
