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
        case .dictionary(let d):
            out.append(UInt8(ascii: "d"))
            for e in d.entries {
                out.append(contentsOf: String(e.key.count).utf8)
                out.append(UInt8(ascii: ":"))
                out.append(contentsOf: e.key)
                e.value.encode(into: &out)
            }
            out.append(UInt8(ascii: "e"))
        }
    }
}
