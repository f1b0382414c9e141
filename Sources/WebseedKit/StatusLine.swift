import Dispatch
import Swarm

/// "peers 3  up 12.4 MiB/s  total 310.0 MiB", redrawn every second on a terminal.
final class StatusLine: @unchecked Sendable {
    private let seeder: Seeder
    private let torrents: [SeedTorrent]
    private let console: Console
    private let enabled: Bool
    private var timer: (any DispatchSourceTimer)?
    private var last: (Int64, UInt64) = (0, DispatchTime.now().uptimeNanoseconds)

    init(seeder: Seeder, torrents: [SeedTorrent], console: Console, enabled: Bool) {
        self.seeder = seeder
        self.console = console
        self.torrents = torrents
        self.enabled = enabled
    }

    func start() {
        guard enabled else { return }
        let t = DispatchSource.makeTimerSource(queue: .global())
        t.schedule(deadline: .now() + .seconds(1), repeating: .seconds(1))
        t.setEventHandler { [weak self] in self?.draw() }
        t.resume()
        timer = t
    }

    func stop() {
        timer?.cancel()
        if enabled { console.redraw("") }
    }

    private func draw() {
        let total = torrents.reduce(Int64(0)) { $0 + $1.uploaded }
        let now = DispatchTime.now().uptimeNanoseconds
        let rate = Double(total - last.0) / max(1e-3, Double(now - last.1) / 1e9)
        last = (total, now)
        console.redraw("peers \(seeder.peerCount)  up \(formatBytes(Int64(rate)))/s  total \(formatBytes(total))")
    }
}
