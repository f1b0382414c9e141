import WebseedKit

/// `--verify-source URL…`: each an http(s) URL prefix of printable ASCII (it is written into
/// the worker's script), at most 16, and only with `--verify-in-browser`.
func checkVerifySources(_ sources: [String], verifyInBrowser: Bool) throws -> [String] {
    guard !sources.isEmpty else { return [] }
    guard verifyInBrowser else { throw ValidationFailure("--verify-source is for --verify-in-browser") }
    guard sources.count <= 16 else { throw ValidationFailure("at most 16 --verify-source URLs") }
    for s in sources {
        let lower = s.lowercased()
        let printable = s.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && !"\"'\\<>`".utf8.contains($0) }
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://"), s.utf8.count <= 2048, printable else {
            throw ValidationFailure("invalid --verify-source '\(s.prefix(80))': an http:// or https:// URL prefix, e.g. http://{site}.localhost:8081")
        }
    }
    return sources
}
