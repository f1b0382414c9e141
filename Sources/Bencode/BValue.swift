/// A bencoded value. Strings are raw bytes (not necessarily UTF-8); dictionaries keep
/// their keys sorted by raw byte order, which is the only order canonical bencoding allows.
public enum BValue: Sendable, Equatable {
    case integer(Int64)
    case bytes([UInt8])
    case list([BValue])
    case dictionary(BDictionary)

    public static func string(_ s: String) -> BValue { .bytes(Array(s.utf8)) }

    public var integer: Int64? { if case .integer(let v) = self { v } else { nil } }
    public var bytes: [UInt8]? { if case .bytes(let v) = self { v } else { nil } }
    public var list: [BValue]? { if case .list(let v) = self { v } else { nil } }
    public var dictionary: BDictionary? { if case .dictionary(let v) = self { v } else { nil } }

    /// The string as UTF-8 text, or nil when it is not a string or not valid UTF-8.
    public var utf8String: String? {
        guard case .bytes(let b) = self else { return nil }
        return String(validating: b, as: UTF8.self)
    }

    /// A short name of the value's type, for error messages.
    public var typeName: String {
        switch self {
        case .integer: "integer"
        case .bytes: "string"
        case .list: "list"
        case .dictionary: "dictionary"
        }
    }
}

/// A dictionary whose entries are always sorted by raw key bytes and unique.
public struct BDictionary: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var key: [UInt8]
        public var value: BValue
    }

    public private(set) var entries: [Entry] = []

    public init() {}

    /// From entries the caller has sorted by key (checked).
    public init(entries: [Entry]) {
        precondition(zip(entries, entries.dropFirst()).allSatisfy { $0.key.lexicographicallyPrecedes($1.key) }, "entries must be sorted and unique")
        self.entries = entries
    }

    /// Builds from pairs in any order; a later duplicate key replaces an earlier one.
    public init(_ pairs: [(String, BValue)]) {
        for (k, v) in pairs { self[k] = v }
    }

    /// Appends an entry the caller guarantees sorts after every existing key (the decoder,
    /// which has already checked canonical order).
    mutating func appendSorted(key: [UInt8], value: BValue) {
        entries.append(Entry(key: key, value: value))
    }

    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }
    public var keys: [[UInt8]] { entries.map(\.key) }

    public subscript(key: String) -> BValue? {
        get { self[Array(key.utf8)] }
        set { self[Array(key.utf8)] = newValue }
    }

    public subscript(key: [UInt8]) -> BValue? {
        get {
            let (found, index) = search(key)
            return found ? entries[index].value : nil
        }
        set {
            let (found, index) = search(key)
            switch (found, newValue) {
            case (true, let v?): entries[index].value = v
            case (true, nil): entries.remove(at: index)
            case (false, let v?): entries.insert(Entry(key: key, value: v), at: index)
            case (false, nil): break
            }
        }
    }

    private func search(_ key: [UInt8]) -> (found: Bool, index: Int) {
        var lo = 0, hi = entries.count
        while lo < hi {
            let mid = (lo + hi) / 2
            let k = entries[mid].key
            if k == key { return (true, mid) }
            if k.lexicographicallyPrecedes(key) { lo = mid + 1 } else { hi = mid }
        }
        return (false, lo)
    }
}
