#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Opens `path` (O_CLOEXEC, O_NONBLOCK and O_NOCTTY added to `flags`) only if it is a
/// regular file: nil when there is none, an error when it is something else (a FIFO
/// planted where a file was expected would otherwise block `open` or `read` forever).
func openRegularFile(_ path: String, _ flags: Int32, mode: mode_t = 0) throws(StorageError) -> (Int32, stat)? {
    let fd = open(path, flags | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, mode)
    guard fd >= 0 else {
        if errno == ENOENT { return nil }
        throw .unreadable(path, reason: errnoText(errno))
    }
    var st = stat()
    guard fstat(fd, &st) == 0 else {
        let e = errno
        close(fd)
        throw .unreadable(path, reason: errnoText(e))
    }
    guard st.st_mode & S_IFMT == S_IFREG else {
        close(fd)
        throw .notARegularFile(path, kind: StateFile.kind(st.st_mode))
    }
    return (fd, st)
}

/// Reads a small file from the state directory (a resume or download record, a saved
/// torrent, DHT state) without trusting what is there: anyone who can write the directory
/// can leave a FIFO, a device or a huge file under the expected name. Opening never blocks
/// (O_NONBLOCK: a FIFO with no writer would otherwise hang `open` forever, deaf to SIGTERM),
/// only a regular file is read, and never more than `maxSize` bytes.
public enum StateFile {
    /// The file's bytes, or nil when there is no file at `path`.
    public static func read(_ path: String, maxSize: Int) throws(StorageError) -> [UInt8]? {
        guard let (fd, st) = try openRegularFile(path, O_RDONLY) else { return nil }
        defer { close(fd) }
        guard st.st_size <= maxSize else { throw .stateFileTooLarge(path, size: Int64(st.st_size), limit: maxSize) }
        // The size is re-checked while reading: the file may grow after fstat.
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size) + 1)
        var filled = 0
        while true {
            if filled == bytes.count {
                guard bytes.count <= maxSize else { throw .stateFileTooLarge(path, size: Int64(filled), limit: maxSize) }
                bytes += [UInt8](repeating: 0, count: min(bytes.count, maxSize + 1 - bytes.count))
            }
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadable(path, reason: errnoText(errno))
            }
            if n == 0 { break }
            filled += n
        }
        bytes.removeLast(bytes.count - filled)
        return bytes
    }

    static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: "a FIFO"
        case S_IFDIR: "a directory"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        case S_IFLNK: "a symlink"
        default: "not a regular file"
        }
    }
}
