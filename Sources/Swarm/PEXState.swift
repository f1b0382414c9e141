import PeerWire

/// One connection's peer exchange (BEP 11, `ut_pex`). Pure: the time is passed in.
///
/// Sending: `message(connected:now:)` is given the torrent's other connections (their
/// listening endpoints and flags) and answers what the peer has not been told yet (added)
/// and what is gone since (dropped), 50 of each at most, and nothing within a minute of the
/// last message or when nothing changed. Receiving: `receive` refuses a payload over
/// `PEXMessage.maxSize`, more than `burst` messages a minute and malformed ones (the
/// connection closes), and takes at most 50 added peers of a message and `maxLearned` in
/// the connection's life, skipping ourselves, the sender, peers already connected or told,
/// and addresses outside the sender's scope (`PEXScope`). Nothing is sent or taken unless
/// the torrent is known and not private (`allowed`).
struct PEXState {
    /// The id we ask peers to send `ut_pex` under (libtorrent's too).
    static let ourID: UInt8 = 1
    static let interval: Double = 60
    static let maxPerMessage = 50
    static let maxLearned = 200
    /// Messages taken within `interval`; one more closes the connection.
    static let burst = 3

    enum Receipt: Equatable {
        /// Peers new to this connection, and how many entries were refused (over the
        /// per-message or lifetime cap, or outside the sender's scope).
        case learned([PEXEntry], refused: Int)
        /// Ignored: PEX is off for this torrent, or it is not known yet.
        case ignored
        case close(String)
    }

    /// The sender's address (its scope decides what we take from it and tell it).
    let peerIP: [UInt8]
    /// Where the peer accepts connections: the port we connected to, or its handshake's `p`.
    var peerListen: PEXPeer?
    /// This host as the peer may name it: the connection's local address and the address
    /// the peer says it sees (`yourip`), at our listening port.
    var ours: Set<PEXPeer> = []
    /// True once the torrent is known and not private; nil while it is not known.
    var allowed: Bool?
    /// The peer's id for `ut_pex` (nil: it does not speak PEX).
    private(set) var peerID: UInt8?

    private var told: [PEXPeer: PEXFlags] = [:]
    private var lastSent: Double?
    private var arrivals: [Double] = []
    private var learned: Set<PEXPeer> = []
    /// The torrent's connections as of the last `message` call.
    private var connected: Set<PEXPeer> = []

    init(peerIP: [UInt8]) { self.peerIP = peerIP }

    var active: Bool { peerID != nil && allowed == true }

    /// The peer's extension handshake: its `ut_pex` id (0 turns PEX off).
    mutating func peerHandshake(_ h: ExtensionHandshake) {
        guard let id = h.messages[PEXMessage.extensionName] else { return }
        peerID = id == 0 ? nil : id
    }

    /// What to send the peer now, if anything.
    mutating func message(connected current: [PEXEntry], now: Double) -> PEXMessage? {
        connected = Set(current.map(\.peer))
        guard active else { return nil }
        if let last = lastSent, now - last < Self.interval { return nil }
        var shown: [PEXPeer: PEXFlags] = [:]
        var added: [PEXEntry] = []
        for e in current where e.peer != peerListen && PEXScope.usable(e.peer.ip, port: e.peer.port, with: peerIP) {
            guard shown.updateValue(e.flags, forKey: e.peer) == nil else { continue }
            if told[e.peer] == nil, added.count < Self.maxPerMessage { added.append(e) }
        }
        let dropped = Array(told.keys.filter { shown[$0] == nil }.sorted { $0.description < $1.description }.prefix(Self.maxPerMessage))
        guard !added.isEmpty || !dropped.isEmpty else { return nil }
        for e in added { told[e.peer] = e.flags }
        for p in dropped { told[p] = nil }
        lastSent = now
        return PEXMessage(added: added, dropped: dropped)
    }

    /// A `ut_pex` payload from the peer.
    mutating func receive(_ payload: [UInt8], now: Double) -> Receipt {
        guard payload.count <= PEXMessage.maxSize else { return .close(PEXMessageError.tooLarge(size: payload.count).description) }
        arrivals.removeAll { now - $0 >= Self.interval }
        guard arrivals.count < Self.burst else { return .close("ut_pex messages more often than \(Self.burst) a minute") }
        arrivals.append(now)
        guard allowed == true else { return .ignored }
        let m: PEXMessage
        do { m = try PEXMessage.decode(payload) } catch { return .close(error.description) }
        var out: [PEXEntry] = []
        var refused = 0
        for (i, e) in m.added.enumerated() {
            guard i < Self.maxPerMessage, learned.count < Self.maxLearned else {
                refused += m.added.count - i
                break
            }
            guard PEXScope.usable(e.peer.ip, port: e.peer.port, with: peerIP) else {
                refused += 1
                continue
            }
            if e.peer == peerListen || ours.contains(e.peer) || connected.contains(e.peer) || learned.contains(e.peer) { continue }
            learned.insert(e.peer)
            out.append(e)
        }
        // `dropped` changes nothing here: the dialer keeps retrying a peer it was given.
        return .learned(out, refused: refused)
    }
}
