import DHTProtocol
import Testing
@testable import DHT

#if canImport(Glibc)
import Glibc
#endif

/// The state file is read once at start: whatever is at its path must never hang start
/// (a FIFO blocked in open() until SIGKILL) and a bad one means a fresh node, not an error.
@Suite struct DHTStateFileTests {
    private func tempDirectory() -> String {
        var template = Array("/tmp/webseed-dht-state-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        #expect(made != nil)
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    @Test(.timeLimit(.minutes(1))) func aFIFOAtTheStatePathIsRefusedWithoutBlocking() {
        let dir = tempDirectory()
        let path = dir + "/dht.state"
        #expect(mkfifo(path, 0o600) == 0)
        defer { unlink(path); rmdir(dir) }
        guard case .unusable(let why) = DHTService.readState(path) else {
            Issue.record("a FIFO was not refused")
            return
        }
        #expect(why.contains("not a regular file"))
        #expect(DHTService.load(path) == nil)
    }

    @Test func aDirectoryAnOversizedFileAndGarbageAreUnusableAndAMissingFileIsAbsent() {
        let dir = tempDirectory()
        defer { unlink(dir + "/big"); unlink(dir + "/junk"); rmdir(dir + "/sub"); rmdir(dir) }
        #expect(mkdir(dir + "/sub", 0o700) == 0)
        guard case .unusable = DHTService.readState(dir + "/sub") else { Issue.record("a directory was read"); return }
        write(dir + "/big", [UInt8](repeating: 0, count: DHTService.maxStateSize + 1))
        guard case .unusable = DHTService.readState(dir + "/big") else { Issue.record("an oversized file was read"); return }
        write(dir + "/junk", Array("not a state file".utf8))
        guard case .unusable = DHTService.readState(dir + "/junk") else { Issue.record("garbage was read"); return }
        guard case .absent = DHTService.readState(dir + "/none") else { Issue.record("a missing file is not absent"); return }
    }

    @Test func aSavedStateIsReadBack() {
        let dir = tempDirectory()
        defer { unlink(dir + "/dht.state"); rmdir(dir) }
        let id = NodeID.random()
        write(dir + "/dht.state", Array("WSDHT1".utf8) + id.bytes)
        guard case .loaded(let read, let nodes) = DHTService.readState(dir + "/dht.state") else { Issue.record("not loaded"); return }
        #expect(read == id)
        #expect(nodes.isEmpty)
    }

    private func write(_ path: String, _ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        #expect(fd >= 0)
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}
