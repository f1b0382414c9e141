/// The browser side of verified mode: plain JavaScript files in `Browser/`, compiled into
/// the binary (SwiftPM's `embedInCode`, so nothing is looked up on disk at run time) and
/// served as one worker script, headed by the gateway's own content types and settings.
enum BrowserScripts {
    /// The reserved folder on a site origin in verified mode.
    static let folder = ".webseed"

    static let bootstrap = String(decoding: PackageResources.bootstrap_html, as: UTF8.self)

    private static let library = [PackageResources.bencode_js, PackageResources.merkle_js, PackageResources.site_js, PackageResources.sw_js]
        .map { String(decoding: $0, as: UTF8.self) }.joined(separator: "\n")

    /// The worker's script. Its bytes depend only on the gateway's build and settings (a
    /// browser compares them to decide whether the worker changed).
    static func worker(spa: Bool) -> String {
        "const WEBSEED_MIME = \(MIME.tableJSON);\nconst WEBSEED_SPA = \(spa);\n" + library
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
