/// Which BEP 19 web seeds a download uses.
extension EngineContext {
    /// `urls` without repeats, those webseed cannot use skipped with a `web_seed_skipped`
    /// event: another scheme than http:// or https://, and with `--offline` any not on this host.
    func usableWebSeeds(_ urls: [String]) -> [String] {
        var seen = Set<String>()
        var out: [String] = []
        for url in urls where seen.insert(url).inserted {
            guard let parsed = TrackerURL(url), parsed.kind == .http else {
                log.webSeedSkipped(url, reason: "webseed downloads from http:// and https:// web seeds only")
                continue
            }
            if configuration.offline, !parsed.isOnThisHost {
                log.webSeedSkipped(url, reason: "--offline: only web seeds on this host are used")
                continue
            }
            out.append(url)
        }
        return out
    }
}

extension EventSink {
    /// `web_seed_skipped`: a web seed URL that is not used, and why.
    func webSeedSkipped(_ url: String, reason: String) {
        emitEvent(["event": "web_seed_skipped", "url": .string(url), "reason": .string(reason)],
                  text: "web seed \(visible(url)) not used: \(reason)")
    }
}
