/// A JSON value written with sorted keys, for `--json` output (scripts read it; people
/// read the text form).
public enum JSON: Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    case string(String)
    case number(Int64)
    /// Finite; written with three decimals.
    case double(Double)
    case bool(Bool)
    case null
    case array([JSON])
    case object([String: JSON])

    public init(stringLiteral s: String) { self = .string(s) }
    public init(integerLiteral n: Int64) { self = .number(n) }
    public init(booleanLiteral b: Bool) { self = .bool(b) }
    public init(_ s: String?) { self = s.map(JSON.string) ?? .null }
    public init(_ n: Int) { self = .number(Int64(n)) }
    public init(_ n: Int64?) { self = n.map(JSON.number) ?? .null }
    public init(_ strings: [String]) { self = .array(strings.map(JSON.string)) }

    public var text: String {
        var out = ""
        write(into: &out)
        return out
    }

    private func write(into out: inout String) {
        switch self {
        case .string(let s): JSON.quote(s, into: &out)
        case .number(let n): out += String(n)
        case .double(let d):
            let milli = d.isFinite ? Int64((d * 1000).rounded()) : 0
            out += (milli < 0 ? "-" : "") + String(abs(milli) / 1000) + "." + String(1000 + abs(milli) % 1000).dropFirst()
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        case .array(let a):
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                v.write(into: &out)
            }
            out += "]"
        case .object(let o):
            out += "{"
            for (i, k) in o.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                JSON.quote(k, into: &out)
                out += ":"
                o[k]!.write(into: &out)
            }
            out += "}"
        }
    }

    private static func quote(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where needsEscape(u):
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
}
