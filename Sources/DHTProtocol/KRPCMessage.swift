import Bencode

/// BEP 5 query methods. Replies do not name their method; the asker remembers it by
/// transaction id.
public enum KRPCMethod: String, Sendable, Hashable, CaseIterable {
    case ping
    case findNode = "find_node"
    case getPeers = "get_peers"
    case announcePeer = "announce_peer"
    /// BEP 44: read an item.
    case get
    /// BEP 44: store an item.
    case put

    public var name: [UInt8] { Array(rawValue.utf8) }

    public init?(name: [UInt8]) {
        guard let s = String(validating: name, as: UTF8.self), let m = KRPCMethod(rawValue: s) else { return nil }
        self = m
    }
}

/// KRPC error codes. A struct, not an enum: codes from other BEPs (BEP 44's 205–207,
/// 301–302) must survive decoding.
public struct KRPCErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }

    public static let generic = KRPCErrorCode(rawValue: 201)
    /// Server error.
    public static let server = KRPCErrorCode(rawValue: 202)
    /// Protocol error: malformed packet, invalid arguments or bad token.
    public static let protocolError = KRPCErrorCode(rawValue: 203)
    public static let methodUnknown = KRPCErrorCode(rawValue: 204)
    /// BEP 44: `v` larger than 1000 bytes.
    public static let valueTooLarge = KRPCErrorCode(rawValue: 205)
    /// BEP 44: the signature does not verify.
    public static let invalidSignature = KRPCErrorCode(rawValue: 206)
    /// BEP 44: `salt` larger than 64 bytes.
    public static let saltTooLarge = KRPCErrorCode(rawValue: 207)
    /// BEP 44: `cas` does not match the stored `seq`.
    public static let casMismatch = KRPCErrorCode(rawValue: 301)
    /// BEP 44: `seq` lower than (or equal to, with another value) the stored one.
    public static let sequenceNotNewer = KRPCErrorCode(rawValue: 302)

    public var description: String { String(rawValue) }
}

/// BEP 32 `want`: which address families a find_node/get_peers asker wants nodes of.
/// Empty means the key is absent (the reply then uses the family the query came over).
public struct WantedFamilies: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let n4 = WantedFamilies(rawValue: 1)
    public static let n6 = WantedFamilies(rawValue: 2)
}

/// One KRPC datagram.
public struct KRPCMessage: Sendable, Equatable {
    /// `t`: chosen by the asker, echoed in the reply; at most 16 bytes accepted.
    public var transactionID: [UInt8]
    public var body: Body
    /// `v`: client version (conventionally 2 letters + 2 version bytes). Informational.
    public var version: [UInt8]?
    /// BEP 43 `ro: 1` on queries: the sender cannot be queried back, so it must not enter
    /// routing tables.
    public var readOnly: Bool
    /// BEP 42 top-level `ip` on replies: the asker's address as the replier saw it.
    public var requesterAddress: Endpoint?

    public enum Body: Sendable, Equatable {
        case query(KRPCQuery)
        case response(KRPCResponse)
        case error(KRPCErrorReply)
    }

    public init(transactionID: [UInt8], body: Body, version: [UInt8]? = nil, readOnly: Bool = false, requesterAddress: Endpoint? = nil) {
        self.transactionID = transactionID
        self.body = body
        self.version = version
        self.readOnly = readOnly
        self.requesterAddress = requesterAddress
    }

    public static func query(_ transactionID: [UInt8], _ query: KRPCQuery) -> KRPCMessage {
        KRPCMessage(transactionID: transactionID, body: .query(query))
    }

    public static func response(_ transactionID: [UInt8], _ response: KRPCResponse, requester: Endpoint? = nil) -> KRPCMessage {
        KRPCMessage(transactionID: transactionID, body: .response(response), requesterAddress: requester)
    }

    public static func error(_ transactionID: [UInt8], _ code: KRPCErrorCode, _ message: String, requester: Endpoint? = nil) -> KRPCMessage {
        KRPCMessage(transactionID: transactionID, body: .error(KRPCErrorReply(code: code, message: message)), requesterAddress: requester)
    }
}

/// `y: q`. Every query carries the sender's id.
public struct KRPCQuery: Sendable, Equatable {
    public var sender: NodeID
    public var arguments: Arguments

    public enum Arguments: Sendable, Equatable {
        case ping
        case findNode(FindNode)
        case getPeers(GetPeers)
        case announcePeer(AnnouncePeer)
        case get(Get)
        case put(Put)
    }

    public init(sender: NodeID, arguments: Arguments) {
        self.sender = sender
        self.arguments = arguments
    }

    public var method: KRPCMethod {
        switch arguments {
        case .ping: .ping
        case .findNode: .findNode
        case .getPeers: .getPeers
        case .announcePeer: .announcePeer
        case .get: .get
        case .put: .put
        }
    }

    public struct FindNode: Sendable, Equatable {
        public var target: NodeID
        public var want: WantedFamilies
        public init(target: NodeID, want: WantedFamilies = []) {
            self.target = target
            self.want = want
        }
    }

    public struct GetPeers: Sendable, Equatable {
        /// The 20-byte info hash (a v2 torrent's short hash).
        public var infoHash: NodeID
        public var want: WantedFamilies
        /// BEP 33 `noseed: 1`: leave seeds out of `values`.
        public var noSeed: Bool
        /// BEP 33 `scrape: 1`: include the BFsd/BFpe bloom filters.
        public var scrape: Bool
        public init(infoHash: NodeID, want: WantedFamilies = [], noSeed: Bool = false, scrape: Bool = false) {
            self.infoHash = infoHash
            self.want = want
            self.noSeed = noSeed
            self.scrape = scrape
        }
    }

    public struct AnnouncePeer: Sendable, Equatable {
        public var infoHash: NodeID
        /// Ignored by the receiver when `impliedPort` is set (may then be 0).
        public var port: UInt16
        /// Use the datagram's source port instead of `port` (peers sharing one port for uTP and DHT).
        public var impliedPort: Bool
        /// The token from this node's earlier get_peers reply.
        public var token: [UInt8]
        /// BEP 33 `seed: 1`.
        public var seed: Bool
        public init(infoHash: NodeID, port: UInt16, impliedPort: Bool = false, token: [UInt8], seed: Bool = false) {
            self.infoHash = infoHash
            self.port = port
            self.impliedPort = impliedPort
            self.token = token
            self.seed = seed
        }
    }
}

extension KRPCQuery {
    /// BEP 44 `get`: the item stored under `target`.
    public struct Get: Sendable, Equatable {
        public var target: NodeID
        /// The `seq` the asker already has: a node may then leave out `k`, `v` and `sig`
        /// unless it holds a newer one.
        public var seq: Int64?
        public var want: WantedFamilies
        public init(target: NodeID, seq: Int64? = nil, want: WantedFamilies = []) {
            self.target = target
            self.seq = seq
            self.want = want
        }
    }

    /// BEP 44 `put`. The decoder checks only types and fixed lengths (`k` 32, `sig` 64);
    /// the value and salt limits and the signature are the storing node's checks, because
    /// each has its own error code (205–207).
    public struct Put: Sendable, Equatable {
        /// The token from this node's earlier `get` reply.
        public var token: [UInt8]
        public var value: BValue
        /// Present for a mutable item.
        public var mutable: MutableFields?
        public init(token: [UInt8], value: BValue, mutable: MutableFields? = nil) {
            self.token = token
            self.value = value
            self.mutable = mutable
        }
    }

    public struct MutableFields: Sendable, Equatable {
        /// `k`: 32 bytes.
        public var publicKey: [UInt8]
        /// `sig`: 64 bytes.
        public var signature: [UInt8]
        public var seq: Int64
        /// Empty when absent.
        public var salt: [UInt8]
        /// Compare-and-swap: the `seq` the writer expects to replace.
        public var cas: Int64?
        public init(publicKey: [UInt8], signature: [UInt8], seq: Int64, salt: [UInt8] = [], cas: Int64? = nil) {
            self.publicKey = publicKey
            self.signature = signature
            self.seq = seq
            self.salt = salt
            self.cas = cas
        }

        /// The fields of a signed item, for a put that stores it.
        public init(_ item: MutableItem, cas: Int64? = nil) {
            self.init(publicKey: item.publicKey.bytes, signature: item.signature, seq: item.seq, salt: item.salt, cas: cas)
        }
    }
}

/// `y: r`. Which keys must be present depends on the query it answers (checked by the
/// decoder against the asker's own record of the method). `nil` means the key is absent.
public struct KRPCResponse: Sendable, Equatable {
    /// The replier's id.
    public var id: NodeID
    /// `nodes`: IPv4 compact node infos (26 bytes each). IPv6 entries here are not written.
    public var nodes: [NodeInfo]?
    /// BEP 32 `nodes6`: IPv6 compact node infos (38 bytes each). IPv4 entries here are not written.
    public var nodes6: [NodeInfo]?
    /// get_peers `values`: compact peers (6 or 18 bytes each). Port 0 is passed through;
    /// callers drop such peers.
    public var values: [Endpoint]?
    /// get_peers write token, needed for a later announce_peer to this node.
    public var token: [UInt8]?
    /// BEP 33 `BFsd` / `BFpe`: 256-byte bloom filters of seeds / peers.
    public var seedsBloomFilter: [UInt8]?
    public var peersBloomFilter: [UInt8]?

    /// BEP 44 `get` replies: the stored value (`v`), and for a mutable item its key
    /// (`k`, 32 bytes), signature (`sig`, 64 bytes) and `seq` (which may come alone, when
    /// the asker already has that `seq`).
    public var value: BValue?
    public var publicKey: [UInt8]?
    public var signature: [UInt8]?
    public var seq: Int64?

    public static let bloomFilterSize = 256

    public init(id: NodeID, nodes: [NodeInfo]? = nil, nodes6: [NodeInfo]? = nil, values: [Endpoint]? = nil, token: [UInt8]? = nil,
                seedsBloomFilter: [UInt8]? = nil, peersBloomFilter: [UInt8]? = nil) {
        self.id = id
        self.nodes = nodes
        self.nodes6 = nodes6
        self.values = values
        self.token = token
        self.seedsBloomFilter = seedsBloomFilter
        self.peersBloomFilter = peersBloomFilter
    }
}

/// `y: e`: `e: [code, message]`.
public struct KRPCErrorReply: Sendable, Equatable {
    public var code: KRPCErrorCode
    /// Decoded as UTF-8 with invalid sequences replaced; informational only.
    public var message: String
    public init(code: KRPCErrorCode, message: String) {
        self.code = code
        self.message = message
    }
}
