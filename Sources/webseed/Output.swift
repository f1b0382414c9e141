import ArgumentParser
import Dispatch
import FoundationEssentials
import Metainfo
import Storage
import WebseedKit

#if canImport(Glibc)
import Glibc
#endif

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

/// `reportingErrors` for async command bodies (the ones that run the engine).
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        printError("error: \(describe(error))")
        throw ExitCode(1)
    }
}

/// An error's one line: whatever it quotes (a path, a name, a magnet field) is escaped.
func describe(_ error: any Error) -> String {
    visible(String(describing: error))
}

/// Accepts bytes ("65536") or a binary suffix ("64K", "64KiB", "1M", "1MiB").
func parseByteSize(_ text: String) -> Int? {
    let t = text.lowercased().filter { $0 != " " }
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
    var jsonSummary: [String: JSON] {
        [
            "name": .string(name),
            "hybrid": .bool(version == .hybrid),
            "version": .string(version.rawValue),
            "v2_infohash": JSON(v2InfoHash?.hex),
            "v1_infohash": JSON(v1InfoHash?.hex),
            "site_id": JSON(siteID),
            "files": JSON(files.count),
            "size": .number(totalSize),
            "piece_length": JSON(pieceLength),
            "pieces": JSON(pieceCount),
            "magnet": .string(MagnetLink(metainfo: self).uri),
            "private": .bool(isPrivate),
        ]
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
        draw()  // a first frame at once, however short the work turns out to be
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
        writeStderr("\r\u{1b}[K")
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
        let percent = String(Int(fraction * 100))
        let line = "\(label) [\(bar)] \(String(repeating: " ", count: 3 - percent.count))\(percent)%  "
            + "\(formatBytes(done)) / \(formatBytes(total))  \(formatBytes(Int64(rate)))/s  ETA \(Int(eta.rounded()))s"
        writeStderr("\r\u{1b}[K\(line)")
    }
}
