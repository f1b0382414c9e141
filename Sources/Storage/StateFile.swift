#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a small file from the state directory (a resume or download record, a saved
/// torrent, DHT state) without trusting what is there: anyone who can write the directory
/// can leave a FIFO, a device or a huge file under the expected name. Opening never blocks
/// (O_NONBLOCK: a FIFO with no writer would otherwise hang `open` forever, deaf to SIGTERM),
/// only a regular file is read, and never more than `maxSize` bytes.
public enum StateFile {
    /// The file's bytes, or nil when there is no file at `path`.
    public static func read(_ path: String, maxSize: Int) throws(StorageError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw .unreadable(path, reason: errnoText(errno))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadable(path, reason: errnoText(errno)) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw .notARegularFile(path, kind: kind(st.st_mode)) }
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
