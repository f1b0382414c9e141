/// Content types by file extension. Text types carry `charset=utf-8`; anything unknown is
/// `application/octet-stream` (and `nosniff` stops browsers guessing otherwise).
enum MIME {
    static func type(forPath path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return "application/octet-stream" }
        let ext = name[name.index(after: dot)...].lowercased()
        if let t = text[ext] { return t + "; charset=utf-8" }
        return binary[ext] ?? "application/octet-stream"
    }

    static let text: [String: String] = [
        "html": "text/html", "htm": "text/html", "css": "text/css", "js": "text/javascript", "mjs": "text/javascript",
        "json": "application/json", "map": "application/json", "webmanifest": "application/manifest+json",
        "txt": "text/plain", "md": "text/markdown", "csv": "text/csv", "xml": "application/xml", "svg": "image/svg+xml",
        "ics": "text/calendar", "vtt": "text/vtt", "rss": "application/rss+xml", "atom": "application/atom+xml",
    ]

    static let binary: [String: String] = [
        "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp",
        "avif": "image/avif", "ico": "image/x-icon", "bmp": "image/bmp",
        "woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf", "otf": "font/otf",
        "wasm": "application/wasm", "pdf": "application/pdf", "zip": "application/zip", "gz": "application/gzip",
        "mp4": "video/mp4", "webm": "video/webm", "mp3": "audio/mpeg", "ogg": "audio/ogg", "wav": "audio/wav",
        "mkv": "video/x-matroska", "bin": "application/octet-stream",
    ]
}
