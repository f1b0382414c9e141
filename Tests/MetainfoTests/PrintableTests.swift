import Testing
@testable import Metainfo

/// Errors carry names from torrents, magnet links and disks: printed, they must stay on one
/// line and leave the terminal alone (found by Tools/fuzz magnet).
@Suite struct PrintableText {
    @Test func controlAndDirectionCharactersAreEscaped() {
        #expect(Printable.escaped("a\nb\r\t\u{1B}]0;x\u{07}\0\u{7F}\u{9B}\u{202E}\u{2067}\u{2028}é") ==
                "a\\nb\\r\\t\\u{1B}]0;x\\u{7}\\u{0}\\u{7F}\\u{9B}\\u{202E}\\u{2067}\\u{2028}é")
        #expect(Printable.escaped(String(repeating: "x", count: 600)).count == 501)
    }

    @Test func aMagnetErrorIsOneHarmlessLine() {
        for link in ["magnet:?xt=urn:bt%0a%1b[2J", "magnet:?xt=urn:bt\u{1}\0x\n1a4976", "magnet:?xt=urn:btih:%0a&dn=x"] {
            do {
                _ = try MagnetLink(parsing: link)
                Issue.record("\(link.debugDescription) parsed")
            } catch {
                #expect(!error.description.unicodeScalars.contains { $0.value < 0x20 }, "\(error.description.debugDescription)")
            }
        }
    }

    @Test func aMetainfoErrorIsOneHarmlessLine() {
        let e = MetainfoError.invalidPathComponent(path: "a\nb\u{1B}[2J", reason: "'..' component")
        #expect(e.description == "unsafe file path 'a\\nb\\u{1B}[2J': '..' component")
    }
}
