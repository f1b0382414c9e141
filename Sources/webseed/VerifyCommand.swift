import ArgumentParser
import FoundationEssentials
import Metainfo
import Storage
import WebseedKit

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a directory against a torrent and name every file that is missing or differs.",
        discussion: "Exits with status 0 when every file matches, 1 when any is missing or differs."
    )

    @Argument(help: "The .torrent file.")
    var torrent: String

    @Argument(help: "The directory that should hold the torrent's files (its root, not its parent).")
    var directory: String

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        try reportingErrors {
            let m = try readTorrent(torrent)
            var isDir = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir else {
                throw ValidationFailure("\(directory) is not a directory")
            }
            let progress = HashProgress(totalBytes: m.totalSize)
            let bar = ProgressBar(progress, label: "verifying")
            bar.start()
            let report = SiteVerifier.verify(m, directory: directory, progress: progress)
            bar.stop()
            if json {
                printJSON(["ok": .bool(report.ok), "files": JSON(report.checked), "problems": JSON(report.problems.map(\.description))])
            } else {
                for p in report.problems { print(visible(p.description)) }
                if report.ok {
                    print("ok: all \(report.checked) files match \(visible(m.name))")
                } else {
                    print("\(report.problems.count) of \(report.checked) files are missing or differ")
                }
            }
            if !report.ok { throw ExitCode(1) }
        }
    }
}
