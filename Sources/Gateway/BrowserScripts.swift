/// The browser side of verified mode: plain JavaScript files in `Browser/`, compiled into
/// the binary (SwiftPM's `embedInCode`, so nothing is looked up on disk at run time) and
/// served as one worker script, headed by the gateway's own content types and settings.
enum BrowserScripts {
    /// The reserved folder on a site origin in verified mode.
    static let folder = ".webseed"

    static let bootstrap = String(decoding: PackageResources.bootstrap_html, as: UTF8.self)

    private static let library = [PackageResources.bencode_js, PackageResources.merkle_js, PackageResources.site_js, PackageResources.names_js, PackageResources.sw_js]
        .map { String(decoding: $0, as: UTF8.self) }.joined(separator: "\n")

    /// The worker's script. Its bytes depend only on the gateway's build and settings (a
    /// browser compares them to decide whether the worker changed).
    /// `sources`: other places holding the sites, tried in order after this gateway (URL
    /// prefixes, `{site}` standing for the site id).
    static func worker(spa: Bool, sources: [String] = []) -> String {
        "const WEBSEED_MIME = \(MIME.tableJSON);\nconst WEBSEED_SPA = \(spa);\nconst WEBSEED_SOURCES = \(jsonArray(sources));\n" + library
    }

    /// Strings as a JSON array (escaped so that no text can end the script's statement).
    static func jsonArray(_ items: [String]) -> String {
        "[" + items.map { item in
            "\"" + item.unicodeScalars.map { c in
                c.isASCII && c.value >= 0x20 && c != "\"" && c != "\\" && c != "<" ? String(c) : String(format4(c.value))
            }.joined() + "\""
        }.joined(separator: ",") + "]"
    }

    private static func format4(_ v: UInt32) -> String {
        if v > 0xFFFF {
            let u = v - 0x10000
            return format4(0xD800 + (u >> 10)) + format4(0xDC00 + (u & 0x3FF))
        }
        let hex = String(v, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }
}

extension MIME {
    /// The content-type tables as a JSON object `{"text": {ext: type}, "binary": {…}}`,
    /// keys sorted (the same text every time).
    static var tableJSON: String {
        func object(_ d: [String: String]) -> String {
            "{" + d.keys.sorted().map { "\"\($0)\":\"\(d[$0]!)\"" }.joined(separator: ",") + "}"
        }
        return "{\"text\":\(object(text)),\"binary\":\(object(binary))}"
    }
}
