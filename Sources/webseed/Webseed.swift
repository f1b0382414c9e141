import ArgumentParser
import FoundationEssentials
import WebseedKit

#if canImport(Glibc)
import Glibc
#endif

@main
struct Webseed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webseed",
        abstract: "Publish a website as a BitTorrent v2 torrent: package it, check it, verify it.",
        version: webseedVersion,
        subcommands: [Create.self, Info.self, Verify.self, Seed.self, Get.self, GatewayCommand.self, DHTCommand.self, KeyCommand.self]
    )

    /// Parses and runs a command. Help and --version print in full; every other parse
    /// error becomes one line, as command errors do, with a pointer to --help.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var engineCommand = command as? any AsyncParsableCommand {
                try await engineCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
            } else if !(error is ExitCode) {
                let message = self.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
                let trimmed = message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message
                printError("error: \(trimmed) (see 'webseed --help')")
            }
            Glibc.exit(code.rawValue)
        }
    }
}

let webseedVersion = "0.1.0"
