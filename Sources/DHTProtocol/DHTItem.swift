import Bencode
import Hashing
import Signing

/// BEP 44 limits.
public enum DHTItemLimits {
    /// `v` bencoded, in bytes.
    public static let maxValueSize = 1_000
    /// `salt`, in bytes.
    public static let maxSaltSize = 64
}

/// Why an item is not acceptable. Each maps to the KRPC error code BEP 44 gives it, so a
/// storing node answers a bad `put` with exactly this.
public enum DHTItemError: Error, Equatable, Sendable, CustomStringConvertible {
    case valueTooLarge(size: Int)
    case saltTooLarge(size: Int)
    case invalidSignature
    /// `cas` named a `seq` other than the one stored.
    case casMismatch(expected: Int64, stored: Int64)
    /// `seq` lower than the stored one, or equal with another value.
    case sequenceNotNewer(seq: Int64, stored: Int64)
    /// A mutable item's key and salt do not hash to the target it was asked for under.
    case targetMismatch
    /// Signing failed inside libcrypto.
    case signing(SigningError)

    public var code: KRPCErrorCode {
        switch self {
        case .valueTooLarge: .valueTooLarge
        case .saltTooLarge: .saltTooLarge
        case .invalidSignature, .signing: .invalidSignature
        case .casMismatch: .casMismatch
        case .sequenceNotNewer: .sequenceNotNewer
        case .targetMismatch: .protocolError
        }
    }

    public var description: String {
        switch self {
        case .valueTooLarge(let n): "item value of \(n) bytes is larger than \(DHTItemLimits.maxValueSize)"
        case .saltTooLarge(let n): "item salt of \(n) bytes is larger than \(DHTItemLimits.maxSaltSize)"
        case .invalidSignature: "item signature does not verify"
        case .casMismatch(let expected, let stored): "item cas \(expected) does not match the stored seq \(stored)"
        case .sequenceNotNewer(let seq, let stored): "item seq \(seq) is not newer than the stored seq \(stored)"
        case .targetMismatch: "item key and salt do not hash to the target asked for"
        case .signing(let e): "cannot sign the item: \(e)"
        }
    }
}

/// A BEP 44 item of either kind.
public enum DHTItem: Sendable, Equatable {
    case immutable(ImmutableItem)
    case mutable(MutableItem)

    public var target: NodeID {
        switch self {
        case .immutable(let i): i.target
        case .mutable(let m): m.target
        }
    }

    public var value: BValue {
        switch self {
        case .immutable(let i): i.value
        case .mutable(let m): m.value
        }
    }
}

/// An immutable item: a bencoded value stored under the SHA-1 of its encoding.
public struct ImmutableItem: Sendable, Equatable {
    public let value: BValue
    /// `value`'s canonical bencoding: what the target hashes.
    public let encodedValue: [UInt8]

    public init(value: BValue) throws(DHTItemError) {
        let encoded = value.encoded()
        guard encoded.count <= DHTItemLimits.maxValueSize else { throw .valueTooLarge(size: encoded.count) }
        self.value = value
        encodedValue = encoded
    }

    public var target: NodeID { NodeID(Digests.sha1(encodedValue)) }
}

/// A mutable item: a value signed by an Ed25519 key, stored under SHA-1(key ‖ salt),
/// replaced only by a higher `seq` signed by the same key.
///
/// It exists only with a valid signature and within the limits: every initialiser
/// checks both.
public struct MutableItem: Sendable, Equatable {
    public let publicKey: Ed25519PublicKey
    /// Empty when absent (the two are the same item).
    public let salt: [UInt8]
    public let seq: Int64
    public let value: BValue
    public let encodedValue: [UInt8]
    public let signature: [UInt8]

    /// An item received from a peer, checked: sizes, then the signature.
    public init(publicKey: Ed25519PublicKey, salt: [UInt8], seq: Int64, value: BValue, signature: [UInt8]) throws(DHTItemError) {
        let encoded = value.encoded()
        try Self.checkSizes(encodedValue: encoded, salt: salt)
        let signed = Self.signedBuffer(salt: salt, seq: seq, encodedValue: encoded)
        guard publicKey.isValidSignature(signature, for: signed) else { throw .invalidSignature }
        self.publicKey = publicKey
        self.salt = salt
        self.seq = seq
        self.value = value
        encodedValue = encoded
        self.signature = signature
    }

    /// A new item signed with `key`.
    public init(signing value: BValue, seq: Int64, salt: [UInt8] = [], with key: Ed25519PrivateKey) throws(DHTItemError) {
        let encoded = value.encoded()
        try Self.checkSizes(encodedValue: encoded, salt: salt)
        do {
            signature = try key.signature(for: Self.signedBuffer(salt: salt, seq: seq, encodedValue: encoded))
        } catch {
            throw .signing(error)
        }
        publicKey = key.publicKey
        self.salt = salt
        self.seq = seq
        self.value = value
        encodedValue = encoded
    }

    public var target: NodeID { Self.target(publicKey: publicKey, salt: salt) }

    /// SHA-1(k ‖ salt): where a mutable item lives.
    public static func target(publicKey: Ed25519PublicKey, salt: [UInt8] = []) -> NodeID {
        NodeID(Digests.sha1(publicKey.bytes + salt))
    }

    /// What the signature covers: `4:salt<n>:<salt>` (only for a non-empty salt), then
    /// `3:seqi<seq>e1:v` and the bencoded value — the body of a bencoded dictionary
    /// without its `d`/`e`.
    public static func signedBuffer(salt: [UInt8], seq: Int64, encodedValue: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(salt.count + encodedValue.count + 40)
        if !salt.isEmpty { out += Array("4:salt\(salt.count):".utf8) + salt }
        out += Array("3:seqi\(seq)e1:v".utf8)
        out += encodedValue
        return out
    }

    private static func checkSizes(encodedValue: [UInt8], salt: [UInt8]) throws(DHTItemError) {
        guard encodedValue.count <= DHTItemLimits.maxValueSize else { throw .valueTooLarge(size: encodedValue.count) }
        guard salt.count <= DHTItemLimits.maxSaltSize else { throw .saltTooLarge(size: salt.count) }
    }
}
