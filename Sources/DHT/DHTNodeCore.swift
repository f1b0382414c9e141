import Bencode
import DHTProtocol
import Signing

/// One DHT node's protocol state: answers queries, runs lookups, announces. Pure:
/// datagrams and the time in, datagrams to send and events out; the UDP socket lives in
/// `DHTService`. Tested node against node without sockets.
public struct DHTNodeCore: Sendable {
    public struct Outgoing: Equatable, Sendable {
        public var bytes: [UInt8]
        public var to: Endpoint
    }

    public enum Event: Equatable, Sendable {
        /// Peers found by a lookup (each reported once per lookup).
        case peers(lookup: Int, [Endpoint])
        /// A lookup finished: how many nodes answered, and whether it announced.
        case lookupDone(lookup: Int, answered: Int, announced: Int)
        /// The address other nodes see us at changed (by their votes).
        case externalAddress(IPAddress)
        /// An item lookup finished: the best valid item found (for a mutable item the
        /// highest `seq` whose signature verified; nil if none), how many nodes answered,
        /// how many answered with an item that did not verify, and how many were sent a put.
        case itemLookupDone(lookup: Int, item: DHTItem?, answered: Int, rejected: Int, putTo: Int)
        /// A node answered a put of `lookup`: nil when it stored the item, else its error
        /// code (302: it holds a newer `seq`).
        case itemPutAnswered(lookup: Int, node: Endpoint, refusal: KRPCErrorCode?)
        /// A node answered an item lookup with an item that did not verify (a forged
        /// signature, another key, a value that does not hash to the target): not used.
        case itemRejected(lookup: Int, target: NodeID, from: Endpoint, reason: String)
    }

    public struct Configuration: Sendable {
        /// Queries in flight per lookup (α).
        public var parallelism = 3
        /// A query not answered in this long counts as failed.
        public var queryTimeout: Double = 2
        /// A lookup's query not answered within three round-trip times (as measured on this
        /// node's answers, between these bounds) is slow: it no longer holds one of the α
        /// slots, nor a place among the closest nodes the lookup waits for (its answer is
        /// still used if it comes). Dead nodes then cost a lookup that long, not
        /// `queryTimeout` each (libtorrent's "short timeout", made to follow the network).
        public var slowAfter: ClosedRange<Double> = 0.01...0.5
        /// A lookup ends after this long whatever it has found.
        public var lookupTimeout: Double = 8
        /// Datagrams accepted per second from one address (a burst of twice that).
        public var perAddressRate: Double = 50
        /// Addresses tracked for rate limiting at most.
        public var maxTrackedAddresses = 10_000
        /// Peers in one get_peers reply at most.
        public var maxValues = 50
        /// Bounds and lifetime of the BEP 44 items stored for others.
        public var items = ItemStore.Limits()
        public init() {}
    }

    public let id: NodeID
    public let configuration: Configuration
    /// Known nodes, an IPv4 and an IPv6 table (BEP 32).
    public private(set) var tables: RoutingTables
    /// The IPv4 table.
    public var table: RoutingTable { tables.ipv4 }
    /// The address families this node has a socket for: it queries, and takes into its
    /// lookups, only nodes of these, and asks for both (`want`) when it has both.
    public var families: Set<AddressFamily> = [.ipv4]
    private var tokens: TokenStore
    private var store = PeerStore()
    /// Info hashes this node's own host serves, with the TCP port: a get_peers for one of
    /// them that arrived at a known local address is answered with that address too (a
    /// wildcard socket learns its address only from each datagram).
    private var served: [NodeID: UInt16] = [:]
    private var items: ItemStore
    private var lastItemSweep = 0.0
    private var pending: [[UInt8]: Pending] = [:]
    /// Smoothed round-trip time of answered queries (seconds).
    private var roundTrip = 0.15
    private var lookups: [Int: Lookup] = [:]
    private var nextLookup = 1
    private var nextTransaction: UInt16 = .random(in: 0...UInt16.max)
    private var buckets: [IPAddress: (tokens: Double, at: Double)] = [:]
    public private(set) var events: [Event] = []

    struct Pending {
        var method: KRPCMethod
        var to: Endpoint
        var node: NodeID?
        var lookup: Int?
        /// A put sent for this item lookup (its answer is an event, not lookup progress).
        var putFor: Int?
        var sentAt: Double
        /// Past `slowAfter`: its lookup no longer counts it in flight.
        var slow = false
    }

    struct Lookup {
        var target: NodeID
        /// find_node (joining, exploring) rather than get_peers.
        var findsNodes = false
        var announcePort: UInt16?
        var startedAt: Double
        /// Known nodes, by distance to the target.
        var candidates: [NodeInfo] = []
        var queried: Set<NodeID> = []
        var answered: [NodeID: [UInt8]] = [:]  // id → token
        var inFlight = 0
        /// Queried nodes that were slow to answer (see `Configuration.slowAfter`), and how
        /// many of those queries are still unanswered.
        var slow: Set<NodeID> = []
        var slowInFlight = 0
        var found: Set<Endpoint> = []
        /// Set for a BEP 44 get (and put) lookup.
        var item: ItemLookup?
    }

    struct ItemLookup {
        /// The signer of a mutable item; nil for an immutable one.
        var key: Ed25519PublicKey?
        var salt: [UInt8]
        /// Sent to the closest nodes that gave tokens once the lookup settles.
        var put: DHTItem?
        var best: DHTItem?
        var rejected = 0
    }

    public init(id: NodeID, now: Double, configuration: Configuration = Configuration()) {
        self.id = id
        self.configuration = configuration
        tables = RoutingTables(ownID: id, now: now)
        tokens = TokenStore(now: now)
        items = ItemStore(limits: configuration.items)
    }

    /// Takes the events produced since the last call.
    public mutating func drainEvents() -> [Event] {
        defer { events.removeAll() }
        return events
    }

    // MARK: incoming

    /// `local`: the address the datagram was sent to, when the socket knows it.
    public mutating func receive(_ datagram: [UInt8], from source: Endpoint, at local: IPAddress? = nil, now: Double) -> [Outgoing] {
        guard datagram.count <= KRPCLimits.maxDatagramSize else { return [] }
        let message: KRPCMessage
        do {
            message = try KRPCMessage(decoding: datagram) { tid in pending[tid].flatMap { $0.to == source ? $0.method : nil } }
        } catch {
            // A query we cannot read gets an error reply (no larger than the query); anything else is dropped.
            guard admit(source.ip, now: now), let tid = KRPCMessage.queryTransactionID(in: datagram) else { return [] }
            let reply = KRPCMessage.error(tid, error.replyCode, error.replyCode == .methodUnknown ? "Method Unknown" : "Protocol Error").encoded()
            return reply.count <= max(datagram.count, 64) ? [Outgoing(bytes: reply, to: source)] : []
        }
        // Answers to our own queries are as many as we asked for; everything else an address
        // sends is rate limited (several nodes behind one address share its budget).
        let solicited: Bool
        switch message.body {
        case .query: solicited = false
        case .response, .error: solicited = pending[message.transactionID]?.to == source
        }
        guard solicited || admit(source.ip, now: now) else { return [] }
        switch message.body {
        case .query(let q):
            return answer(q, transaction: message.transactionID, from: source, at: local, querySize: datagram.count, readOnly: message.readOnly, now: now)
        case .response(let r):
            let known = pending[message.transactionID]?.to == source
            let out = replied(r, transaction: message.transactionID, from: source, now: now)
            if known, let seen = message.requesterAddress { vote(seen.ip, from: source.ip) }
            return out
        case .error(let e):
            guard let p = pending.removeValue(forKey: message.transactionID) else { return [] }
            if let l = p.putFor {
                // A refused put is the node's answer, not its failure.
                events.append(.itemPutAnswered(lookup: l, node: source, refusal: e.code))
                return []
            }
            return failed(p, now: now)
        }
    }

    /// Token bucket per source address: a flood costs the flooder, not the node. An IPv6
    /// source counts by its /64, which one host commonly holds whole (new addresses from it
    /// are no new budget).
    private mutating func admit(_ source: IPAddress, now: Double) -> Bool {
        let ip: IPAddress = if case .v6(let high, _) = source { .v6(high: high, low: 0) } else { source }
        let burst = configuration.perAddressRate * 2
        var b = buckets[ip] ?? (burst, now)
        b.tokens = min(burst, b.tokens + (now - b.at) * configuration.perAddressRate)
        b.at = now
        guard b.tokens >= 1 else { buckets[ip] = b; return false }
        b.tokens -= 1
        if buckets[ip] == nil, buckets.count >= configuration.maxTrackedAddresses {
            buckets = buckets.filter { now - $0.value.at < 2 }
            if buckets.count >= configuration.maxTrackedAddresses { return false }
        }
        buckets[ip] = b
        return true
    }

    private mutating func answer(_ q: KRPCQuery, transaction t: [UInt8], from source: Endpoint, at local: IPAddress?, querySize: Int,
                                 readOnly: Bool, now: Double) -> [Outgoing] {
        if !readOnly { _ = tables.heard(from: NodeInfo(id: q.sender, endpoint: source), .queriedUs, now: now) }
        var response = KRPCResponse(id: id)
        switch q.arguments {
        case .ping:
            break
        case .findNode(let f):
            closeNodes(f.target, want: f.want, from: source, into: &response, now: now)
        case .getPeers(let g):
            response.token = tokens.token(for: source.ip, now: now)
            // Peers of the family the query came over (BEP 32); nodes of the families asked for.
            var values = store.peers(for: g.infoHash, max: configuration.maxValues, now: now, family: source.ip.family)
            if let port = served[g.infoHash], let local, !local.isUnspecified, local.family == source.ip.family,
               !values.contains(where: { $0.ip == local }) {
                values = [Endpoint(ip: local, port: port)] + values.prefix(configuration.maxValues - 1)
            }
            if values.isEmpty { closeNodes(g.infoHash, want: g.want, from: source, into: &response, now: now) } else { response.values = values }
        case .announcePeer(let a):
            guard tokens.isValid(a.token, from: source.ip, now: now) else {
                return [Outgoing(bytes: KRPCMessage.error(t, .protocolError, "Bad Token").encoded(), to: source)]
            }
            let port = a.impliedPort ? source.port : a.port
            // Only the sender's own address can be announced (the token binds it); port 0 is refused.
            if port != 0 { _ = store.announce(Endpoint(ip: source.ip, port: port), for: a.infoHash, seed: a.seed, now: now) }
        case .get(let g):
            response.token = tokens.token(for: source.ip, now: now)
            closeNodes(g.target, want: g.want, from: source, into: &response, now: now)
            switch items.item(g.target, now: now) {
            case .immutable(let item)?:
                response.value = item.value
            case .mutable(let item)?:
                response.seq = item.seq
                // An asker that already holds this seq gets only the number (BEP 44).
                if g.seq.map({ $0 < item.seq }) ?? true {
                    response.value = item.value
                    response.publicKey = item.publicKey.bytes
                    response.signature = item.signature
                }
            case nil:
                break
            }
        case .put(let p):
            guard tokens.isValid(p.token, from: source.ip, now: now) else {
                return [Outgoing(bytes: KRPCMessage.error(t, .protocolError, "Bad Token").encoded(), to: source)]
            }
            do {
                try store(p, from: source.ip, now: now)
            } catch {
                return [Outgoing(bytes: KRPCMessage.error(t, error.code, error.description).encoded(), to: source)]
            }
        }
        var reply = KRPCMessage.response(t, response, requester: source).encoded()
        // Never an amplifier: a reply is at most eight times the query (and one datagram).
        // The one exception is a stored item, which a get reply must carry whole: its
        // nodes go first, and it is sent if it fits one datagram (the per-address rate
        // limit bounds what a spoofed asker can draw).
        while reply.count > max(8 * querySize, 256) || reply.count > KRPCLimits.maxDatagramSize {
            if let v = response.values, v.count > 1 { response.values = Array(v.prefix(v.count / 2)) }
            else if let n = response.nodes, n.count > 1 { response.nodes = Array(n.prefix(n.count / 2)) }
            else if let n = response.nodes6, n.count > 1 { response.nodes6 = Array(n.prefix(n.count / 2)) }
            else if response.value != nil, response.nodes != nil || response.nodes6 != nil { response.nodes = nil; response.nodes6 = nil }
            else if response.value != nil, reply.count <= KRPCLimits.maxDatagramSize { break }
            else { return [] }
            reply = KRPCMessage.response(t, response, requester: source).encoded()
        }
        return [Outgoing(bytes: reply, to: source)]
    }

    /// Checks and stores a put (its token already checked). Throws what the asker is told.
    private mutating func store(_ p: KRPCQuery.Put, from source: IPAddress, now: Double) throws(DHTItemError) {
        guard let m = p.mutable else {
            _ = items.put(try ImmutableItem(value: p.value), from: source, now: now)
            return
        }
        // The decoder checked the key's length, so this cannot fail; a bad key is a bad signature.
        guard let key = try? Ed25519PublicKey(bytes: m.publicKey) else { throw .invalidSignature }
        let item = try MutableItem(publicKey: key, salt: m.salt, seq: m.seq, value: p.value, signature: m.signature)
        _ = try items.put(item, cas: m.cas, from: source, now: now)
    }

    /// The item stored here under `target` for others, if any (what a get would answer).
    public func storedItem(_ target: NodeID, now: Double) -> DHTItem? {
        items.item(target, now: now)
    }

    public var storedItemCount: Int { items.count }

    /// The eight nodes nearest `target` of each family the asker wants (BEP 32 `want`; by
    /// default the family its query came over): IPv4 ones in `nodes`, IPv6 ones in `nodes6`.
    private func closeNodes(_ target: NodeID, want: WantedFamilies, from source: Endpoint, into response: inout KRPCResponse, now: Double) {
        let wanted = want.isEmpty ? (source.ip.family == .ipv4 ? .n4 : .n6) : want
        if wanted.contains(.n4) { response.nodes = tables.ipv4.closest(to: target, count: 8, now: now) }
        if wanted.contains(.n6) { response.nodes6 = tables.ipv6.closest(to: target, count: 8, now: now) }
    }

    private mutating func replied(_ r: KRPCResponse, transaction t: [UInt8], from source: Endpoint, now: Double) -> [Outgoing] {
        guard let p = pending.removeValue(forKey: t), p.to == source else { return [] }
        roundTrip = 0.875 * roundTrip + 0.125 * min(max(0, now - p.sentAt), configuration.queryTimeout)
        if p.node == nil || p.node == r.id {
            _ = tables.heard(from: NodeInfo(id: r.id, endpoint: source), .replied, now: now)
        }
        if let l = p.putFor {
            events.append(.itemPutAnswered(lookup: l, node: source, refusal: nil))
            return []
        }
        guard let l = p.lookup, var lookup = lookups[l] else { return [] }
        if p.slow { lookup.slowInFlight -= 1 } else { lookup.inFlight -= 1 }
        lookup.answered[r.id] = r.token ?? []
        let named = (r.nodes ?? []) + (r.nodes6 ?? [])
        for n in named where n.id != id && families.contains(n.endpoint.ip.family) && Self.isDialable(n.endpoint)
            && !lookup.queried.contains(n.id) && !lookup.candidates.contains(n) {
            lookup.candidates.append(n)
        }
        lookup.candidates.sort { ($0.id ^ lookup.target) < ($1.id ^ lookup.target) }
        if lookup.candidates.count > 64 { lookup.candidates.removeLast(lookup.candidates.count - 64) }
        if let values = r.values {
            let fresh = values.filter { $0.port != 0 && lookup.found.insert($0).inserted }
            if !fresh.isEmpty { events.append(.peers(lookup: l, fresh)) }
        }
        if lookup.item != nil, let value = r.value,
           let why = Self.consider(value, in: r, for: lookup.target, into: &lookup.item!) {
            events.append(.itemRejected(lookup: l, target: lookup.target, from: source, reason: why))
        }
        lookups[l] = lookup
        return advance(l, now: now)
    }

    private mutating func failed(_ p: Pending, now: Double) -> [Outgoing] {
        if let node = p.node { _ = tables.failed(node, family: p.to.ip.family, now: now) }
        guard let l = p.lookup, lookups[l] != nil else { return [] }
        if p.slow { lookups[l]!.slowInFlight -= 1 } else { lookups[l]!.inFlight -= 1 }
        return advance(l, now: now)
    }

    /// Whether a node named by someone else may be sent a query: a real port, and an address
    /// that is one host (not unspecified, multicast or broadcast). Sending to such an
    /// address fails, and a failed send must not be something a reply can provoke.
    public static func isDialable(_ e: Endpoint) -> Bool {
        guard e.port != 0, !e.ip.isUnspecified else { return false }
        switch e.ip {
        case .v4(let a): return a >> 28 < 0xE  // 224.0.0.0/4 multicast, 240.0.0.0/4 reserved and broadcast
        // ff00::/8 multicast; ::ffff:0:0/96 an IPv4 address in IPv6 form, which the
        // IPv6-only socket cannot send to (an IPv4 node is named in `nodes`).
        case .v6(let high, let low): return high >> 56 != 0xFF && !(high == 0 && low >> 32 == 0xFFFF)
        }
    }

    // MARK: our external address

    /// What the nodes that answered us say our address is (BEP 5 `ip`): one vote per
    /// answering address, the most recent 32 kept; the address with most votes, once at
    /// least three different nodes agree on it.
    public private(set) var externalAddress: IPAddress?
    private var votes: [(voter: IPAddress, seen: IPAddress)] = []

    private mutating func vote(_ seen: IPAddress, from voter: IPAddress) {
        votes.removeAll { $0.voter == voter }
        votes.append((voter, seen))
        if votes.count > 32 { votes.removeFirst(votes.count - 32) }
        var counts: [IPAddress: Int] = [:]
        for v in votes { counts[v.seen, default: 0] += 1 }
        if let (ip, n) = counts.max(by: { $0.value < $1.value }), n >= 3, ip != externalAddress {
            externalAddress = ip
            events.append(.externalAddress(ip))
        }
    }

    // MARK: lookups

    /// Joins the network through known addresses: a lookup of our own id.
    public mutating func bootstrap(_ endpoints: [Endpoint], now: Double) -> [Outgoing] {
        let l = newLookup(target: id, announcePort: nil, now: now)
        lookups[l]!.findsNodes = true
        var out: [Outgoing] = []
        let usable = endpoints.filter { families.contains($0.ip.family) }
        for e in usable { out.append(query(.findNode(.init(target: id, want: want)), to: e, node: nil, lookup: l, now: now)) }
        lookups[l]!.inFlight += usable.count
        return out + advance(l, now: now)
    }

    /// Walks toward `target` with find_node: every node asked learns of us, and we of the
    /// nodes on the way (how a young node fills its table, and how buckets are refreshed).
    public mutating func explore(_ target: NodeID, now: Double) -> [Outgoing] {
        let l = newLookup(target: target, announcePort: nil, now: now)
        lookups[l]!.findsNodes = true
        return advance(l, now: now)
    }

    /// Says that this node's host serves `infoHash` on TCP `port` (nil: no longer): a
    /// get_peers for it is answered with the address it was sent to (see `receive`).
    public mutating func serve(_ infoHash: NodeID, port: UInt16?) {
        served[infoHash] = port
    }

    /// Records this node itself as a peer of `infoHash` (when its own address is known), so
    /// nodes that ask it directly find it even before its announces reach anyone.
    public mutating func storeSelf(_ infoHash: NodeID, at endpoint: Endpoint, now: Double) {
        _ = store.announce(endpoint, for: infoHash, seed: true, now: now)
    }

    /// Looks for peers of `infoHash`; with `announcePort`, then announces this node there.
    public mutating func getPeers(_ infoHash: NodeID, announcePort: UInt16?, now: Double) -> (lookup: Int, [Outgoing]) {
        let l = newLookup(target: infoHash, announcePort: announcePort, now: now)
        for (ip, port) in store.peers(for: infoHash, max: configuration.maxValues, now: now).map({ ($0.ip, $0.port) }) {
            lookups[l]!.found.insert(Endpoint(ip: ip, port: port))
        }
        if !lookups[l]!.found.isEmpty { events.append(.peers(lookup: l, Array(lookups[l]!.found))) }
        return (l, advance(l, now: now))
    }

    /// Looks up the mutable item of `key` and `salt` on the nodes closest to its target:
    /// every answer's signature is checked against `key`, and the highest `seq` wins
    /// (`itemLookupDone`). An item this node stores itself counts as one answer.
    public mutating func getItem(key: Ed25519PublicKey, salt: [UInt8] = [], now: Double) -> (lookup: Int, [Outgoing]) {
        itemLookup(target: MutableItem.target(publicKey: key, salt: salt), key: key, salt: salt, put: nil, now: now)
    }

    /// Looks up the immutable item stored under `target` (SHA-1 of its bencoding).
    public mutating func getImmutableItem(_ target: NodeID, now: Double) -> (lookup: Int, [Outgoing]) {
        itemLookup(target: target, key: nil, salt: [], put: nil, now: now)
    }

    /// Finds the nodes closest to the item's target (and what they hold), then puts the
    /// item to the eight closest that gave a token, and stores it here too. Each node's
    /// answer is an `itemPutAnswered` event. A node holding a higher `seq` refuses (302);
    /// `itemLookupDone` reports the best item found, so the publisher can go above it.
    public mutating func putItem(_ item: DHTItem, now: Double) -> (lookup: Int, [Outgoing]) {
        switch item {
        case .immutable(let i):
            _ = items.put(i, now: now)
            return itemLookup(target: i.target, key: nil, salt: [], put: item, now: now)
        case .mutable(let m):
            _ = try? items.put(m, now: now)
            return itemLookup(target: m.target, key: m.publicKey, salt: m.salt, put: item, now: now)
        }
    }

    private mutating func itemLookup(target: NodeID, key: Ed25519PublicKey?, salt: [UInt8], put: DHTItem?, now: Double) -> (lookup: Int, [Outgoing]) {
        let l = newLookup(target: target, announcePort: nil, now: now)
        var item = ItemLookup(key: key, salt: salt, put: put)
        if let own = items.item(target, now: now) { item.best = own }
        lookups[l]!.item = item
        return (l, advance(l, now: now))
    }

    /// Keeps `value` as the lookup's best item if it is valid for the target and better
    /// than what it has; counts it as rejected if it does not verify, and says why.
    private static func consider(_ value: BValue, in r: KRPCResponse, for target: NodeID, into lookup: inout ItemLookup) -> String? {
        let candidate: DHTItem
        if let key = lookup.key {
            let why: String
            if r.publicKey != key.bytes {
                why = "the item is signed by another key"
            } else if let seq = r.seq, let signature = r.signature {
                do {
                    let m = try MutableItem(publicKey: key, salt: lookup.salt, seq: seq, value: value, signature: signature)
                    if case .mutable(let best)? = lookup.best, best.seq >= m.seq { return nil }
                    lookup.best = .mutable(m)
                    return nil
                } catch {
                    why = "seq \(seq): \(error.description)"
                }
            } else {
                why = "the item has no seq or signature"
            }
            lookup.rejected += 1
            return why
        } else {
            guard let i = try? ImmutableItem(value: value), i.target == target else {
                lookup.rejected += 1
                return "the value does not hash to the target"
            }
            candidate = .immutable(i)
        }
        lookup.best = candidate
        return nil
    }

    private mutating func newLookup(target: NodeID, announcePort: UInt16?, now: Double) -> Int {
        let l = nextLookup
        nextLookup += 1
        var lookup = Lookup(target: target, announcePort: announcePort, startedAt: now)
        lookup.candidates = tables.closest(to: target, count: 16, now: now, families: families)
        lookups[l] = lookup
        return l
    }

    /// Keeps α queries in flight to the closest unqueried candidates; ends the lookup when
    /// the closest eight have all answered or failed, or when its time is up.
    private mutating func advance(_ l: Int, now: Double) -> [Outgoing] {
        guard var lookup = lookups[l] else { return [] }
        var out: [Outgoing] = []
        let method: KRPCQuery.Arguments =
            lookup.item != nil ? .get(.init(target: lookup.target, want: want))
            : lookup.findsNodes ? .findNode(.init(target: lookup.target, want: want)) : .getPeers(.init(infoHash: lookup.target, want: want))
        // The closest eight that did not turn out slow: a slow node that answers after all is counted again.
        let closest = lookup.candidates.lazy.filter { !lookup.slow.contains($0.id) || lookup.answered[$0.id] != nil }.prefix(8)
        // Fewer than eight answers while slow queries are still out: those may yet answer (a
        // busy host, a slow link), so the lookup waits for them, up to the query timeout.
        let settled = closest.allSatisfy { lookup.queried.contains($0.id) } && lookup.inFlight == 0
            && (lookup.answered.count >= 8 || lookup.slowInFlight == 0)
        if settled || now - lookup.startedAt > configuration.lookupTimeout {
            lookups[l] = nil
            var announced = 0
            if let port = lookup.announcePort {
                for n in lookup.candidates where announced < 8 {
                    guard let token = lookup.answered[n.id], !token.isEmpty else { continue }
                    out.append(query(.announcePeer(.init(infoHash: lookup.target, port: port, token: token)), to: n.endpoint, node: n.id, lookup: nil, now: now))
                    announced += 1
                }
            }
            if let item = lookup.item {
                var putTo = 0
                if let put = item.put {
                    for n in lookup.candidates where putTo < 8 {
                        guard let token = lookup.answered[n.id], !token.isEmpty else { continue }
                        let fields: KRPCQuery.MutableFields? = if case .mutable(let m) = put { KRPCQuery.MutableFields(m) } else { nil }
                        let q = KRPCQuery.Put(token: token, value: put.value, mutable: fields)
                        out.append(query(.put(q), to: n.endpoint, node: n.id, lookup: nil, putFor: l, now: now))
                        putTo += 1
                    }
                }
                events.append(.itemLookupDone(lookup: l, item: item.best, answered: lookup.answered.count, rejected: item.rejected, putTo: putTo))
            } else if !lookup.findsNodes {
                events.append(.lookupDone(lookup: l, answered: lookup.answered.count, announced: announced))
            }
            return out
        }
        for n in lookup.candidates where lookup.inFlight < configuration.parallelism && !lookup.queried.contains(n.id) {
            lookup.queried.insert(n.id)
            lookup.inFlight += 1
            out.append(query(method, to: n.endpoint, node: n.id, lookup: l, now: now))
        }
        lookups[l] = lookup
        return out
    }

    private mutating func query(_ arguments: KRPCQuery.Arguments, to: Endpoint, node: NodeID?, lookup: Int?, putFor: Int? = nil,
                                now: Double) -> Outgoing {
        nextTransaction &+= 1
        let t = [UInt8(nextTransaction >> 8), UInt8(nextTransaction & 0xff)]
        let q = KRPCQuery(sender: id, arguments: arguments)
        pending[t] = Pending(method: q.method, to: to, node: node, lookup: lookup, putFor: putFor, sentAt: now)
        return Outgoing(bytes: KRPCMessage.query(t, q).encoded(), to: to)
    }

    /// BEP 32 `want` on this node's queries: both families when it has sockets for both,
    /// else none (an answer then names nodes of the family the query went over).
    private var want: WantedFamilies { families.count > 1 ? [.n4, .n6] : [] }

    // MARK: time

    /// How long a lookup's query may go unanswered before it is slow.
    var slowAfter: Double { min(max(3 * roundTrip, configuration.slowAfter.lowerBound), configuration.slowAfter.upperBound) }

    /// When `markSlow` next has something to do (nil: no lookup query is waiting).
    public func nextSlowCheck() -> Double? {
        pending.values.lazy.filter { $0.lookup != nil && !$0.slow }.map(\.sentAt).min().map { $0 + slowAfter }
    }

    /// Marks the lookup queries unanswered for `slowAfter` as slow, and moves their lookups on.
    public mutating func markSlow(now: Double) -> [Outgoing] {
        var out: [Outgoing] = []
        let limit = slowAfter
        for (t, p) in pending where !p.slow && now - p.sentAt >= limit {
            guard let l = p.lookup, lookups[l] != nil else { continue }
            pending[t]!.slow = true
            lookups[l]!.inFlight -= 1
            lookups[l]!.slowInFlight += 1
            if let node = p.node { lookups[l]!.slow.insert(node) }
            out += advance(l, now: now)
        }
        return out
    }

    /// Expires unanswered queries, ends overdue lookups, pings nodes the table asks about
    /// and refreshes stale buckets.
    public mutating func tick(now: Double) -> [Outgoing] {
        var out: [Outgoing] = []
        for (t, p) in pending where now - p.sentAt > configuration.queryTimeout {
            pending[t] = nil
            out += failed(p, now: now)
        }
        out += markSlow(now: now)
        for l in Array(lookups.keys) { out += advance(l, now: now) }
        for target in tables.dueRefreshes(now: now, families: families) { out += explore(target, now: now) }
        if now - lastItemSweep >= 60 {
            lastItemSweep = now
            items.removeExpired(now: now)
        }
        return out
    }

    public var pendingQueries: Int { pending.count }
    public var activeLookups: Int { lookups.count }
}
