import Signing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A publisher's key on disk: the Ed25519 private key as unencrypted PKCS#8 PEM
/// (`-----BEGIN PRIVATE KEY-----`), the form `openssl genpkey -algorithm ed25519` writes,
/// so operators can inspect, back up or make keys with the tools they know
/// (`openssl pkey -in FILE -pubout`).
///
/// Written with mode 0600, never over an existing file; read only when no one but its
/// owner can read or write it (as ssh does with private keys).
public enum KeyFile {
    /// Makes a new key and writes it to `path`, which must not exist.
    public static func create(at path: String) throws(KeyFileError) -> Ed25519PrivateKey {
        let key: Ed25519PrivateKey
        let pem: [UInt8]
        do {
            key = try Ed25519PrivateKey.generate()
            pem = try key.pemEncoded()
        } catch {
            throw .cannotWrite(path, reason: error.description)
        }
        try write(pem, to: path)
        return key
    }

    /// Reads the key at `path`, refusing a file others can read or write.
    public static func load(_ path: String) throws(KeyFileError) -> Ed25519PrivateKey {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .cannotRead(path, reason: errnoText(errno)) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .cannotRead(path, reason: errnoText(errno)) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw .notAFile(path) }
        let permissions = st.st_mode & 0o777
        guard permissions & 0o077 == 0 else { throw .tooOpen(path, mode: permissions) }
        let limit = Ed25519PrivateKey.maxPEMSize
        guard st.st_size <= limit else { throw .invalid(path, .keyTooLarge(size: Int(st.st_size), limit: limit)) }
        var bytes = [UInt8](repeating: 0, count: limit + 1)
        var count = 0
        while count < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .cannotRead(path, reason: errnoText(errno))
            }
            if n == 0 { break }
            count += n
        }
        guard count <= limit else { throw .invalid(path, .keyTooLarge(size: count, limit: limit)) }
        do {
            return try Ed25519PrivateKey(pem: Array(bytes.prefix(count)))
        } catch {
            throw .invalid(path, error)
        }
    }

    /// A temporary file of mode 0600 beside `path`, synced, then linked to `path`: link(2)
    /// fails if `path` exists, so nothing is ever overwritten, and `path` appears whole
    /// or not at all.
    private static func write(_ bytes: [UInt8], to path: String) throws(KeyFileError) {
        if access(path, F_OK) == 0 { throw .exists(path) }
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let temp = dir + "/." + base + ".tmp-\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .cannotWrite(path, reason: errnoText(errno)) }
        defer { unlink(temp) }
        var written = 0
        let failure: Int32 = bytes.withUnsafeBytes { raw in
            while written < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                written += n
            }
            // The mode given to open is masked by the umask; 0600 is set outright.
            if fchmod(fd, 0o600) != 0 { return errno }
            return fsync(fd) == 0 ? 0 : errno
        }
        let closeFailed = close(fd) != 0
        guard failure == 0 else { throw .cannotWrite(path, reason: errnoText(failure)) }
        guard !closeFailed else { throw .cannotWrite(path, reason: errnoText(errno)) }
        guard link(temp, path) == 0 else {
            if errno == EEXIST { throw .exists(path) }
            throw .cannotWrite(path, reason: errnoText(errno))
        }
    }

    private static func errnoText(_ code: Int32) -> String {
        String(cString: strerror(code)).lowercased()
    }
}

/// Why a key file cannot be made or used: one line, saying what to do where there is
/// something to do.
public enum KeyFileError: Error, Equatable, Sendable, CustomStringConvertible {
    case exists(String)
    case cannotWrite(String, reason: String)
    case cannotRead(String, reason: String)
    case notAFile(String)
    /// Group or other users have some access (`mode` holds the permission bits).
    case tooOpen(String, mode: mode_t)
    case invalid(String, SigningError)

    public var description: String {
        switch self {
        case .exists(let p): "key file '\(p)' already exists; webseed never overwrites a key (choose another file name)"
        case .cannotWrite(let p, let reason): "cannot write key file '\(p)': \(reason)"
        case .cannotRead(let p, let reason): "cannot read key file '\(p)': \(reason)"
        case .notAFile(let p): "key file '\(p)' is not a regular file"
        case .tooOpen(let p, let mode):
            "key file '\(p)' is accessible by other users (mode \(Self.octal(mode))); fix it with: chmod 600 \(Self.shellQuoted(p))"
        case .invalid(let p, let e): "key file '\(p)' is not usable: \(e)"
        }
    }

    private static func octal(_ mode: mode_t) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// The path as a shell word, quoted only when it needs it.
    private static func shellQuoted(_ path: String) -> String {
        let plain = path.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._/-+,=@%:".unicodeScalars.contains($0)) }
        return plain && !path.isEmpty ? path : "'" + path.map { $0 == "'" ? "'\\''" : String($0) }.joined() + "'"
    }
}
