/// Errors from reading and writing sites on disk, each naming the path involved.
public enum StorageError: Error, Equatable, Sendable, CustomStringConvertible {
    case notFound(String)
    case notADirectory(String)
    case emptyDirectory(String)
    case unreadable(String, reason: String)
    case changedWhileHashing(String)
    case invalidName(path: String, reason: String)
    case symlinkEscapes(String, target: String)
    case symlinkLoop(String)
    case outputInsideSource(output: String, source: String)
    case outputExists(String)
    case writeFailed(String, reason: String)
    case tooManyFiles(limit: Int)
    case notARegularFile(String, kind: String)
    case stateFileTooLarge(String, size: Int64, limit: Int)

    /// One line, escaped: paths come from the disk, whose names can hold anything.
    public var description: String { Printable.escaped(text) }

    private var text: String {
        switch self {
        case .notFound(let p): "\(p): no such file or directory"
        case .notADirectory(let p): "\(p) is not a directory"
        case .emptyDirectory(let p): "\(p) holds no files to package"
        case .unreadable(let p, let reason): "cannot read \(p): \(reason)"
        case .changedWhileHashing(let p): "\(p) changed while it was being hashed; try again once it is stable"
        case .invalidName(let p, let reason): "cannot package \(p): \(reason)"
        case .symlinkEscapes(let p, let target): "symlink \(p) points outside the directory (to \(target)); it is not followed"
        case .symlinkLoop(let p): "symlink \(p) leads into a loop"
        case .outputInsideSource(let o, let s): "the output \(o) is inside the directory being packaged (\(s)); choose a path outside it"
        case .outputExists(let p): "\(p) already exists (use --force to overwrite it)"
        case .writeFailed(let p, let reason): "cannot write \(p): \(reason)"
        case .tooManyFiles(let limit): "the directory holds more than \(limit) files"
        case .notARegularFile(let p, let kind): "\(p) is \(kind), not a regular file; it was not read (remove it)"
        case .stateFileTooLarge(let p, let size, let limit): "\(p) is \(size) bytes, more than the \(limit) a state file may hold; it was not read (remove it)"
        }
    }
}

/// errno as text.
public func errnoText(_ code: Int32) -> String {
    String(cString: strerror(code))
}

import Metainfo

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
