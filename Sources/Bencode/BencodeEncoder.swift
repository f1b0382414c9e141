/// Canonical encoder: dictionary keys come out in raw byte order (BDictionary keeps
/// them sorted), integers in shortest form.
extension BValue {
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        encode(into: &out)
        return out
    }

    public func encode(into out: inout [UInt8]) {
        switch self {
        case .integer(let v):
            out.append(UInt8(ascii: "i"))
            out.append(contentsOf: String(v).utf8)
            out.append(UInt8(ascii: "e"))
        case .bytes(let b):
            out.append(contentsOf: String(b.count).utf8)
            out.append(UInt8(ascii: ":"))
            out.append(contentsOf: b)
        case .list(let l):
            out.append(UInt8(ascii: "l"))
            for v in l { v.encode(into: &out) }
            out.append(UInt8(ascii: "e"))
        case .dictionary:
            out.append(UInt8(ascii: "d"))
            encodedEntries(into: &out)
            out.append(UInt8(ascii: "e"))
        }
    }

    /// A dictionary's key/value pairs without the surrounding `d` … `e`, for writers that
    /// splice pre-encoded values between them.
    public func encodedEntries(into out: inout [UInt8]) {
        guard case .dictionary(let d) = self else { return }
        for e in d.entries {
            out.append(contentsOf: String(e.key.count).utf8)
            out.append(UInt8(ascii: ":"))
            out.append(contentsOf: e.key)
            e.value.encode(into: &out)
        }
    }
}
