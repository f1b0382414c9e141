/// A tracker's announce URL, split enough to decide how and whether to reach it.
struct TrackerURL: Sendable, Equatable {
    enum Kind: Sendable, Equatable { case http, udp }
    let text: String
    let kind: Kind
    /// Without brackets for IPv6.
    let host: String
    let port: Int

    /// nil for a URL webseed cannot announce to (another scheme, no host, a bad port).
    init?(_ text: String) {
        let lower = text.lowercased()
        let kind: Kind, defaultPort: Int, rest: Substring
        if lower.hasPrefix("http://") {
            (kind, defaultPort, rest) = (.http, 80, text.dropFirst(7))
        } else if lower.hasPrefix("https://") {
            (kind, defaultPort, rest) = (.http, 443, text.dropFirst(8))
        } else if lower.hasPrefix("udp://") {
            (kind, defaultPort, rest) = (.udp, -1, text.dropFirst(6))
        } else {
            return nil
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let hostPort = authority.split(separator: "@").last ?? authority
        var host: Substring, port: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { return nil }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let after = hostPort[hostPort.index(after: close)...]
            port = after.hasPrefix(":") ? after.dropFirst() : nil
        } else {
            let parts = hostPort.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            host = parts[0]
            port = parts.count == 2 ? parts[1] : nil
        }
        guard !host.isEmpty else { return nil }
        let number = port.map { Int($0) } ?? defaultPort
        guard let number, (1...65535).contains(number) else { return nil }
        self.text = text
        self.kind = kind
        self.host = host.lowercased()
        self.port = number
    }

    /// Whether the tracker is on this host (what `--offline` still announces to): a loopback
    /// name or address. Other names are not resolved to find out.
    var isOnThisHost: Bool {
        host == "localhost" || host.hasSuffix(".localhost") || host == "::1" || host.hasPrefix("127.")
    }
}
