import FoundationEssentials
import Metainfo
import Storage
import Swarm

#if canImport(Glibc)
import Glibc
#endif

// What every command shares: one-line errors, sizes, HOST:PORT, the state directory.

/// A user error found while checking options: one line, exit status 1.
public struct ValidationFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Text from outside (a torrent, a magnet, a peer, an HTTP request) made safe to print:
/// control characters (C0, DEL, C1), line and paragraph separators and bidirectional
/// formatting characters (U+202E and its kin) are shown as `\u{1b}`-style escapes, so that
/// nothing read can move the cursor, retitle or clear a terminal, split a line or reorder it.
public func visible(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: needsEscape) else { return text }
    var out = String.UnicodeScalarView()
    for u in text.unicodeScalars {
        if needsEscape(u) {
            out.append(contentsOf: "\\u{\(String(u.value, radix: 16))}".unicodeScalars)
        } else {
            out.append(u)
        }
    }
    return String(out)
}

/// The characters `visible` escapes.
public func needsEscape(_ u: Unicode.Scalar) -> Bool {
    switch u.value {
    case 0x00...0x1F, 0x7F...0x9F: true  // C0, DEL, C1
    case 0x2028, 0x2029: true  // line and paragraph separators
    case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: true  // bidi marks, embeddings, overrides, isolates
    default: false
    }
}

/// One line on stderr, "webseed: " and `line` with anything it quotes made `visible`.
public func printError(_ line: String) {
    writeStderr("webseed: \(visible(line))\n")
}

public func writeStderr(_ text: String) {
    var bytes = Array(text.utf8)
    _ = bytes.withUnsafeMutableBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
}

public func printJSON(_ object: [String: JSON]) {
    print(JSON.object(object).text)
}

/// "1.5 MiB": one decimal, binary units.
public func formatBytes(_ n: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(n) B" : "\(oneDecimal(v)) \(units[u])"
}

public func oneDecimal(_ v: Double) -> String {
    let tenths = Int64((v * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}

public func parseHostPort(_ text: String, option: String) throws -> (String, Int) {
    var host = text
    var portText = ""
    if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
        host = String(text[text.index(after: text.startIndex)..<close])
        let rest = text[text.index(after: close)...]
        portText = rest.first == ":" ? String(rest.dropFirst()) : ""
    } else if let colon = text.lastIndex(of: ":") {
        host = String(text[..<colon])
        portText = String(text[text.index(after: colon)...])
    }
    guard !host.isEmpty, !host.contains("["), !host.contains("]"), let port = Int(portText), (0...65535).contains(port) else {
        throw ValidationFailure("invalid \(option) '\(text)': use HOST:PORT, e.g. 127.0.0.1:6881 or [::1]:6881")
    }
    // An IPv6 address goes in brackets: in `::1:6881` the port cannot be told apart.
    guard text.hasPrefix("[") || !host.contains(":") else {
        throw ValidationFailure("invalid \(option) '\(text)': an IPv6 address goes in brackets, e.g. [\(host)]:\(port)")
    }
    return (host, port)
}

public func defaultStateDirectory() -> String {
    if let xdg = getenv("XDG_DATA_HOME").map({ String(cString: $0) }), !xdg.isEmpty { return xdg + "/webseed" }
    let home = getenv("HOME").map { String(cString: $0) } ?? "."
    return home + "/.local/share/webseed"
}

public func makeDirectories(_ path: String) throws {
    // A component that exists but is not a directory is said plainly, not as Foundation's dump.
    var prefix = ""
    for part in path.split(separator: "/") {
        prefix += (prefix.isEmpty && !path.hasPrefix("/") ? "" : "/") + part
        var isDir = false
        if FileManager.default.fileExists(atPath: prefix, isDirectory: &isDir), !isDir {
            throw ValidationFailure("\(prefix) is a file, not a directory")
        }
    }
    do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
        throw ValidationFailure("cannot create \(path): \(error)")
    }
}

/// The address to put in a magnet's `x.pe`: the listening address, or for a wildcard
/// listener this host's first non-loopback IPv4 address (127.0.0.1 if it has none).
public func advertisedHost(_ host: String) -> String {
    guard host == "0.0.0.0" || host == "::" || host == everyAddress else { return host.contains(":") ? "[\(host)]" : host }
    var list: UnsafeMutablePointer<ifaddrs>?
    guard getifaddrs(&list) == 0, let first = list else { return "127.0.0.1" }
    defer { freeifaddrs(list) }
    var p: UnsafeMutablePointer<ifaddrs>? = first
    while let a = p {
        if let sa = a.pointee.ifa_addr, sa.pointee.sa_family == UInt16(AF_INET), a.pointee.ifa_flags & UInt32(IFF_LOOPBACK) == 0 {
            var addr = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            inet_ntop(AF_INET, &addr, &text, socklen_t(text.count))
            return String(decoding: text.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        p = a.pointee.ifa_next
    }
    return "127.0.0.1"
}

public func isLoopback(_ host: String) -> Bool {
    host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
}

/// Reads and validates a torrent file, with size bounded before reading.
public func readTorrent(_ path: String) throws -> Metainfo {
    let attributes: [FileAttributeKey: Any]
    do { attributes = try FileManager.default.attributesOfItem(atPath: path) } catch {
        throw ValidationFailure("\(path): no such file")
    }
    if let size = attributes[.size] as? Int, size > BencodeLimitsForCLI.maxTorrentSize {
        throw ValidationFailure("\(path) is \(size) bytes, too large for a torrent (limit \(BencodeLimitsForCLI.maxTorrentSize))")
    }
    guard let data = FileManager.default.contents(atPath: path) else { throw ValidationFailure("cannot read \(path)") }
    do {
        return try Metainfo(bytes: [UInt8](data))
    } catch {
        throw ValidationFailure("\(path) is not a valid torrent: \(error.description)")
    }
}

enum BencodeLimitsForCLI { static let maxTorrentSize = 64 << 20 }

/// A `creation date` as ISO 8601 when it is in years 1970–9999; anything else (a torrent
/// may say int64 max or a negative number) as the number it is, with a note.
public func creationDateText(_ seconds: Int64) -> String {
    guard (0...253_402_300_799).contains(seconds) else { return "\(seconds) (seconds since 1970; not a date in 1970–9999)" }
    return Date(timeIntervalSince1970: TimeInterval(seconds)).formatted(.iso8601)
}
