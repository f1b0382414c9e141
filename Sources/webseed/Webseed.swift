import ArgumentParser

@main
struct Webseed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webseed",
        abstract: "Publish a website as a BitTorrent v2 torrent: package it, check it, verify it.",
        version: webseedVersion,
        subcommands: [Create.self, Info.self, Verify.self]
    )
}

let webseedVersion = "0.1.0"
