import Hashing
import Metainfo
import Signing
import Testing
@testable import Names

#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under /tmp, removed by `clean()`.
private struct TempDir {
    let path: String
    init() {
        var template = Array("/tmp/webseed-names-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }
    func file(_ name: String) -> String { path + "/" + name }
    func clean() {
        if let dir = opendir(path) {
            while let e = readdir(dir) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name != "." && name != ".." { unlink(file(name)) }
            }
            closedir(dir)
        }
        rmdir(path)
    }
}

private func mode(_ path: String) -> mode_t {
    var st = stat()
    return stat(path, &st) == 0 ? st.st_mode & 0o777 : 0
}

private func write(_ text: String, to path: String, mode: mode_t) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
    _ = Array(text.utf8).withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    fchmod(fd, mode)
    close(fd)
}

@Suite struct SiteNameTests {
    /// BEP 44's example key.
    let key = (try? Ed25519PublicKey(bytes: HexCoding.decode("77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548") ?? [])) ?? nil

    @Test func theNameIsKDashAndBase32OfTheKey() throws {
        let key = try #require(key)
        let name = SiteName.name(for: key)
        #expect(name == "k-o77yjec2sgjwgz6acnqiamie7esdf7gzassdkemhnx24347h4vea")
        #expect(name.count == 54 && name.count <= 63 && name == name.lowercased())
        #expect(SiteName.publicKey(fromName: name) == key)
        #expect(SiteName.publicKey(fromName: name.uppercased()) == key)
    }

    @Test func namesAndSiteIDsNeverPassForEachOther() throws {
        let key = try #require(key)
        let name = SiteName.name(for: key)
        #expect(SiteID.decode(name) == nil)
        let siteID = SiteID.encode(SHA256Digest(bytes: key.bytes)!)  // the same 32 bytes as a site id
        #expect(siteID.count == 52)
        #expect(SiteName.publicKey(fromName: siteID) == nil)
        #expect(SiteName.publicKey(fromName: "k" + siteID) == nil)
        #expect(SiteName.publicKey(fromName: "k-" + siteID.dropLast()) == nil)
        #expect(SiteName.publicKey(fromName: "k-" + siteID.dropLast() + "1") == nil)  // outside base32
        #expect(SiteName.publicKey(fromName: "x-" + siteID) == nil)
    }

    @Test func magnetIsBEP46s() throws {
        let key = try #require(key)
        #expect(SiteName.magnet(for: key) == "magnet:?xs=urn:btpk:77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548")
        #expect(SiteName.magnet(for: key, salt: [0x6e]).hasSuffix("e548&s=6e"))
    }
}

@Suite struct KeyFileTests {
    @Test func aNewKeyIsPrivatePEMAndReadsBack() throws {
        let dir = TempDir()
        defer { dir.clean() }
        let old = umask(0)  // even with no umask the file is 0600
        defer { umask(old) }
        let path = dir.file("site.key")
        let key = try KeyFile.create(at: path)
        #expect(mode(path) == 0o600)
        #expect(try KeyFile.load(path).seed == key.seed)
        // Nothing else is left beside it.
        var names: [String] = []
        if let d = opendir(dir.path) {
            while let e = readdir(d) { names.append(withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }) }
            closedir(d)
        }
        #expect(names.filter { $0 != "." && $0 != ".." } == ["site.key"])
    }

    @Test func anExistingFileIsNeverOverwritten() throws {
        let dir = TempDir()
        defer { dir.clean() }
        let path = dir.file("site.key")
        let first = try KeyFile.create(at: path)
        #expect(throws: KeyFileError.exists(path)) { try KeyFile.create(at: path) }
        #expect(try KeyFile.load(path).seed == first.seed)
    }

    @Test(arguments: [mode_t(0o644), 0o640, 0o604, 0o620, 0o660])
    func aKeyOthersCanReachIsRefusedWithTheFix(_ m: mode_t) throws {
        let dir = TempDir()
        defer { dir.clean() }
        let path = dir.file("site.key")
        _ = try KeyFile.create(at: path)
        chmod(path, m)
        #expect(throws: KeyFileError.tooOpen(path, mode: m)) { try KeyFile.load(path) }
        let line = KeyFileError.tooOpen(path, mode: m).description
        #expect(line.hasSuffix("fix it with: chmod 600 \(path)") && !line.contains("\n"))
    }

    @Test func ownerOnlyModesAreAccepted() throws {
        let dir = TempDir()
        defer { dir.clean() }
        let path = dir.file("site.key")
        _ = try KeyFile.create(at: path)
        chmod(path, 0o400)
        _ = try KeyFile.load(path)
    }

    @Test func theFixQuotesAPathTheShellWouldSplit() {
        #expect(KeyFileError.tooOpen("my key's.pem", mode: 0o644).description.hasSuffix("chmod 600 'my key'\\''s.pem'"))
    }

    @Test func otherFilesAreRefused() throws {
        let dir = TempDir()
        defer { dir.clean() }
        let junk = dir.file("junk.pem")
        write("not a key", to: junk, mode: 0o600)
        #expect(throws: KeyFileError.invalid(junk, .notAPrivateKey)) { try KeyFile.load(junk) }
        let big = dir.file("big.pem")
        write(String(repeating: "A", count: 5_000), to: big, mode: 0o600)
        #expect(throws: KeyFileError.invalid(big, .keyTooLarge(size: 5_000, limit: 4_096))) { try KeyFile.load(big) }
        #expect(throws: KeyFileError.notAFile(dir.path)) { try KeyFile.load(dir.path) }
        let missing = dir.file("missing.pem")
        #expect(throws: KeyFileError.cannotRead(missing, reason: "no such file or directory")) { try KeyFile.load(missing) }
        // A key made by openssl is read as it is.
        let openssl = dir.file("openssl.pem")
        write("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n", to: openssl, mode: 0o600)
        #expect(HexCoding.encode(try KeyFile.load(openssl).publicKey.bytes) == "19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1")
    }
}
