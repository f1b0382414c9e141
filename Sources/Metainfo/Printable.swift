/// Text that came from a torrent, a magnet link or a disk, made safe to print: on one line,
/// and unable to retitle, clear or reorder a terminal. Control characters (C0, DEL, C1),
/// line and paragraph separators and the bidirectional controls are shown as escapes
/// (`\n`, `\u{1B}`), and the text is cut at `limit` characters.
public enum Printable {
    public static func escaped(_ text: String, limit: Int = 500) -> String {
        var out = ""
        var count = 0
        for s in text.unicodeScalars {
            if count == limit { return out + "…" }
            count += 1
            switch s {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if needsEscape(s.value) {
                    out += "\\u{" + String(s.value, radix: 16, uppercase: true) + "}"
                } else {
                    out.unicodeScalars.append(s)
                }
            }
        }
        return out
    }

    private static func needsEscape(_ v: UInt32) -> Bool {
        v < 0x20 || (0x7f...0x9f).contains(v) || v == 0x200e || v == 0x200f || (0x202a...0x202e).contains(v)
            || (0x2066...0x2069).contains(v) || v == 0x2028 || v == 0x2029
    }
}
