import ArgumentParser
import Dispatch
import FoundationEssentials
import Metainfo
import Storage
import Synchronization

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

func describe(_ error: any Error) -> String {
    String(describing: error)
}

func printError(_ line: String) {
    writeStderr("webseed: \(line)\n")
}

func writeStderr(_ text: String) {
    var bytes = Array(text.utf8)
    _ = bytes.withUnsafeMutableBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
}

func printJSON(_ object: [String: JSON]) {
    print(JSON.object(object).text)
}

/// "1.5 MiB": one decimal, binary units.
func formatBytes(_ n: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(n) B" : "\(oneDecimal(v)) \(units[u])"
}

func oneDecimal(_ v: Double) -> String {
    let tenths = Int64((v * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
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

/// Runs async work from synchronous command code and waits for it.
func runAsync<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let done = DispatchSemaphore(value: 0)
    let box = ResultBox<T>()
    Task {
        do { box.set(.success(try await body())) } catch { box.set(.failure(error)) }
        done.signal()
    }
    done.wait()
    return try box.get()
}

private final class ResultBox<T: Sendable>: Sendable {
    private let result = Mutex<Result<T, any Error>?>(nil)
    func set(_ r: Result<T, any Error>) { result.withLock { $0 = r } }
    func get() throws -> T { try result.withLock { $0 }!.get() }
}

/// SIGINT and SIGTERM, caught from the moment this is made (so a signal right after
/// "ready" still shuts down gracefully); `wait()` returns on the first one, or on `signal()`.
final class StopSignal: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private var sources: [any DispatchSourceSignal] = []
    private let state = Mutex<(stopped: Bool, hooks: [@Sendable () -> Void])>((false, []))

    init() {
        for sig in [SIGINT, SIGTERM] {
            _ = Glibc.signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { [weak self] in self?.signal() }
            s.resume()
            sources.append(s)
        }
    }

    func signal() {
        let hooks = state.withLock { s -> [@Sendable () -> Void] in
            s.stopped = true
            defer { s.hooks = [] }
            return s.hooks
        }
        for h in hooks { h() }
        semaphore.signal()
    }

    func wait() { semaphore.wait() }

    /// True once a signal came (start-up steps that wait check it before going on).
    var stopped: Bool { state.withLock { $0.stopped } }

    /// Runs `hook` at the first signal (at once if it came already): wakes up start-up
    /// steps that wait for something else.
    func onStop(_ hook: @escaping @Sendable () -> Void) {
        let now = state.withLock { s -> Bool in
            if s.stopped { return true }
            s.hooks.append(hook)
            return false
        }
        if now { hook() }
    }
}
