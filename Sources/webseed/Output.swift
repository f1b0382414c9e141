import ArgumentParser
import Foundation
import Metainfo
import Storage

/// Runs a command body and turns any error into one line on stderr and exit status 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        printError("error: \(describe(error))")
        throw ExitCode(1)
    }
}

func describe(_ error: any Error) -> String {
    String(describing: error)
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data("webseed: \(line)\n".utf8))
}

func printJSON(_ object: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
}

func formatBytes(_ n: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
}

/// Accepts bytes ("65536") or a binary suffix ("64K", "64KiB", "1M", "1MiB").
func parseByteSize(_ text: String) -> Int? {
    let t = text.trimmingCharacters(in: .whitespaces).lowercased()
    let digits = t.prefix(while: \.isNumber)
    guard let n = Int(digits) else { return nil }
    switch t.dropFirst(digits.count) {
    case "", "b": return n
    case "k", "kb", "kib": return n << 10
    case "m", "mb", "mib": return n << 20
    case "g", "gb", "gib": return n << 30
    default: return nil
    }
}

extension Metainfo {
    var jsonSummary: [String: Any] {
        var o: [String: Any] = [
            "name": name,
            "hybrid": version == .hybrid,
            "version": version.rawValue,
            "v2_infohash": v2InfoHash?.hex ?? NSNull(),
            "v1_infohash": v1InfoHash?.hex ?? NSNull(),
            "site_id": siteID ?? NSNull(),
            "files": files.count,
            "size": totalSize,
            "piece_length": pieceLength,
            "pieces": pieceCount,
            "magnet": MagnetLink(metainfo: self).uri,
        ]
        o["private"] = isPrivate
        return o
    }
}

/// Draws a one-line progress bar on stderr while hashing runs, only on a terminal.
final class ProgressBar: @unchecked Sendable {
    private let progress: HashProgress
    private let label: String
    private var timer: (any DispatchSourceTimer)?
    private let start = Date()
    static var enabled: Bool { isatty(STDERR_FILENO) == 1 }

    init(_ progress: HashProgress, label: String) {
        self.progress = progress
        self.label = label
    }

    func start(_ queue: DispatchQueue = .global()) {
        guard Self.enabled else { return }
        let t = DispatchSource.makeTimerSource(queue: queue)
        t.schedule(deadline: .now() + .milliseconds(200), repeating: .milliseconds(200))
        t.setEventHandler { [weak self] in self?.draw() }
        t.resume()
        timer = t
    }

    func stop() {
        guard let t = timer else { return }
        t.cancel()
        timer = nil
        FileHandle.standardError.write(Data("\r\u{1b}[K".utf8))
    }

    private func draw() {
        let done = progress.bytesDone
        let total = max(progress.totalBytes, 1)
        let fraction = min(1, Double(done) / Double(total))
        let elapsed = Date().timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let width = 28
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let line = String(format: "%@ [%@] %3.0f%%  %@ / %@  %@/s  ETA %.0fs", label, bar, fraction * 100,
                          formatBytes(done), formatBytes(total), formatBytes(Int64(rate)), eta)
        FileHandle.standardError.write(Data("\r\u{1b}[K\(line)".utf8))
    }
}
