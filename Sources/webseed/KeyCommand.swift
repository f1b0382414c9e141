import ArgumentParser
import Hashing
import Names
import Signing
import WebseedKit

/// `webseed key new FILE` / `webseed key show FILE`: the key a site's stable name is made of.
struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Make or show the Ed25519 key that gives a site a stable name.",
        discussion: """
            The key file is an unencrypted PKCS#8 PEM private key (as 'openssl genpkey -algorithm ed25519' \
            writes), mode 0600. Whoever holds it can publish new versions of the site: keep it private and \
            keep a backup. The site's name is 'k-' and the public key in base32 (54 characters, one DNS label).
            """,
        subcommands: [New.self, Show.self]
    )

    struct New: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "new", abstract: "Write a new key to FILE (never over an existing file).")

        @Argument(help: "Where to write the key.")
        var file: String

        @Flag(help: "Print one JSON object instead of text.")
        var json = false

        func run() throws {
            try reportingErrors {
                let key = try KeyFile.create(at: file)
                printKey(key.publicKey, file: file, json: json)
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Print the public key, name and magnet of the key in FILE.")

        @Argument(help: "The key file.")
        var file: String

        @Flag(help: "Print one JSON object instead of text.")
        var json = false

        func run() throws {
            try reportingErrors {
                let key = try KeyFile.load(file)
                printKey(key.publicKey, file: file, json: json)
            }
        }
    }
}

private func printKey(_ key: Ed25519PublicKey, file: String, json: Bool) {
    let hex = HexCoding.encode(key.bytes)
    let name = SiteName.name(for: key)
    let magnet = SiteName.magnet(for: key)
    if json {
        printJSON(["public_key": .string(hex), "name": .string(name), "magnet": .string(magnet), "file": .string(file)])
    } else {
        print("key \(visible(file))")
        print("  public key  \(hex)")
        print("  name        \(name)")
        print("  magnet      \(magnet)")
    }
}
