import Testing
@testable import WebseedKit

/// `--listen`, `--peer-listen` and `--dht-bootstrap` addresses: IPv6 in brackets.
@Suite struct ListenAddressTests {
    @Test func hostsAndPortsAreRead() throws {
        #expect(try parseHostPort("127.0.0.1:6881", option: "--listen") == ("127.0.0.1", 6881))
        #expect(try parseHostPort("[::1]:6881", option: "--listen") == ("::1", 6881))
        #expect(try parseHostPort("[::]:0", option: "--listen") == ("::", 0))
        #expect(try parseHostPort("*:6881", option: "--listen") == ("*", 6881))
        #expect(try parseHostPort("router.example:6881", option: "--dht-bootstrap") == ("router.example", 6881))
    }

    @Test func anIPv6AddressWithoutBracketsIsOneClearError() {
        do {
            _ = try parseHostPort("::1:6881", option: "--listen")
            Issue.record("::1:6881 was accepted")
        } catch {
            #expect("\(error)".contains("[::1]:6881"), "\(error)")
        }
        for bad in ["[::1]", "[::1]6881", "[::1]:x", "::1", "[::1:6881", "*:", ":6881", "[::1]:70000"] {
            #expect(throws: ValidationFailure.self, "\(bad)") { try parseHostPort(bad, option: "--listen") }
        }
    }
}
