import Locking
import Testing
@testable import WebseedKit

/// The `listening` line for IPv6 and for the listener on both families: the JSON fields
/// stay as they were (the IPv4 address, the port), the text says where peers can connect.
@Suite struct ListenEventTests {
    final class Lines: Sendable {
        let text = Locked<[String]>([])
        var console: Console { Console { _, t in self.text.withLock { $0.append(t) } } }
    }

    func line(json: Bool, _ call: (EventSink) -> Void) -> [String] {
        let out = Lines()
        call(EventSink(json: json, console: out.console))
        return out.text.withLock { $0 }
    }

    @Test func textBracketsIPv6AndNamesTheIPv6Socket() {
        #expect(line(json: false) { $0.listening(host: "::1", port: 6881) } == ["listening on [::1]:6881\n"])
        #expect(line(json: false) { $0.listening(host: "0.0.0.0", port: 6881, alsoIPv6: true) } == ["listening on 0.0.0.0:6881 and [::]:6881\n"])
    }

    @Test func jsonFieldsAreUnchanged() {
        #expect(line(json: true) { $0.listening(host: "0.0.0.0", port: 6881, alsoIPv6: true) } == [#"{"event":"listening","host":"0.0.0.0","port":6881}"# + "\n"])
        #expect(line(json: true) { $0.listening(host: "::1", port: 6881) } == [#"{"event":"listening","host":"::1","port":6881}"# + "\n"])
    }
}
