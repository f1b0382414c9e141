import Locking

#if canImport(Glibc)
import Glibc
#endif

/// Where the engine's output goes: standard output and standard error, one writer at a time
/// (events come from the network threads too). A line redrawn in place (progress, status)
/// is cleared before the next line is written over it.
final class Console: Sendable {
    enum Stream: Sendable {
        case standardOutput, standardError
    }

    private let write: @Sendable (Stream, String) -> Void
    /// Also the lock that keeps lines whole: every write holds it.
    private let lineRedrawn = Locked(false)

    /// `write` gets whole lines (or a redrawn line's bytes) one at a time; tests collect them.
    init(write: @escaping @Sendable (Stream, String) -> Void) {
        self.write = write
    }

    /// The process's own standard output and error.
    static let standard = Console { stream, text in
        switch stream {
        case .standardOutput:
            print(text, terminator: "")
            // Scripts read the lines as they come: a pipe must not hold them back.
            fflush(nil)
        case .standardError:
            writeStderr(text)
        }
    }

    func line(_ text: String, to stream: Stream = .standardOutput) {
        lineRedrawn.withLock { redrawn in
            // Standard error never clears: the terminal's line is standard output's.
            let clear = redrawn && stream == .standardOutput ? "\r\u{1b}[K" : ""
            write(stream, clear + text + "\n")
        }
    }

    /// Replaces the terminal's current line with `text` (no newline).
    func redraw(_ text: String) {
        lineRedrawn.withLock { redrawn in
            redrawn = true
            write(.standardOutput, "\r\u{1b}[K" + text)
        }
    }
}
