import Hashing

/// get_peers write tokens (BEP 5): `SHA-1(secret ‖ ip)` cut to `tokenLength` bytes, so
/// an announce_peer is accepted only from the address the token was handed to. The secret
/// rotates every `rotationInterval`; tokens from the current and the previous secret are
/// accepted, so a token lives between one and two intervals (5–10 minutes).
///
/// Nothing is stored per requester: memory is two secrets, whatever the traffic.
public struct TokenStore: Sendable {
    public static let rotationInterval: Double = 5 * 60
    public static let tokenLength = 8
    static let secretLength = 20

    private var current: [UInt8]
    private var previous: [UInt8]
    private var rotatedAt: Double

    public init(now: Double, using rng: inout some RandomNumberGenerator) {
        current = TokenStore.secret(using: &rng)
        previous = TokenStore.secret(using: &rng)
        rotatedAt = now
    }

    public init(now: Double) {
        var g = SystemRandom()
        self.init(now: now, using: &g)
    }

    /// The token to put in a get_peers reply to `ip`.
    public mutating func token(for ip: IPAddress, now: Double, using rng: inout some RandomNumberGenerator) -> [UInt8] {
        rotateIfDue(now: now, using: &rng)
        return TokenStore.token(secret: current, ip: ip)
    }

    public mutating func token(for ip: IPAddress, now: Double) -> [UInt8] {
        var g = SystemRandom()
        return token(for: ip, now: now, using: &g)
    }

    /// Whether an announce_peer from `ip` carries a token we issued to that address
    /// recently enough.
    public mutating func isValid(_ token: [UInt8], from ip: IPAddress, now: Double, using rng: inout some RandomNumberGenerator) -> Bool {
        rotateIfDue(now: now, using: &rng)
        guard token.count == TokenStore.tokenLength else { return false }
        return TokenStore.equal(token, TokenStore.token(secret: current, ip: ip))
            || TokenStore.equal(token, TokenStore.token(secret: previous, ip: ip))
    }

    public mutating func isValid(_ token: [UInt8], from ip: IPAddress, now: Double) -> Bool {
        var g = SystemRandom()
        return isValid(token, from: ip, now: now, using: &g)
    }

    private mutating func rotateIfDue(now: Double, using rng: inout some RandomNumberGenerator) {
        let elapsed = now - rotatedAt
        guard elapsed >= TokenStore.rotationInterval else { return }  // also a clock that went back
        // After two or more intervals of silence the current secret is too old to honour.
        previous = elapsed >= 2 * TokenStore.rotationInterval ? TokenStore.secret(using: &rng) : current
        current = TokenStore.secret(using: &rng)
        rotatedAt = now
    }

    private static func secret(using rng: inout some RandomNumberGenerator) -> [UInt8] {
        (0..<secretLength).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
    }

    private static func token(secret: [UInt8], ip: IPAddress) -> [UInt8] {
        Array(Digests.sha1(secret + ip.bytes).bytes.prefix(tokenLength))
    }

    /// Time independent of where the bytes differ.
    private static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
