import Metainfo
import NIOCore

/// One site's content as the gateway reads it: the torrent, when it can be read, its
/// verified bytes, and a few numbers for the status page. Implemented outside the gateway
/// (local data being seeded, a download from the swarm, a fake in tests), so the gateway
/// knows nothing of peers or disks.
///
/// The gateway's invariant rests on `bytes`: every byte it yields has been verified against
/// its file's pieces root. The gateway does not hash again; it sends nothing but those
/// bytes, and never more of them than it asked for.
public protocol SiteContent: Sendable {
    /// The torrent as far as it is known (nil while a fetched site's metadata is on the way).
    var metainfo: Metainfo? { get }

    /// Returns once the torrent is known and its data checked, so `bytes` can be asked for.
    /// Throws `SiteContentError.timedOut` at `deadline`.
    func ready(deadline: NIODeadline) async throws -> Metainfo

    /// Bytes `range` of file `file` (index into the metainfo's files), in order, in chunks of
    /// any size, each verified. Asking raises those pieces above others and waits for them
    /// (like a torrent client's reader); `deadline` bounds that wait (`.timedOut`). A problem
    /// that can be known before any byte (not fetched in time, the file changed on disk) is
    /// thrown by the first `next()`, so the gateway can answer with an error status instead
    /// of a cut-off body.
    func bytes(file: Int, range: Range<Int64>, deadline: NIODeadline) -> VerifiedChunks

    /// For the status page, asked on each view.
    var stats: SiteStats { get }
}

/// The chunks `SiteContent.bytes` yields, pulled one at a time: the next read starts only when
/// the gateway asks for it, so a slow browser holds back the disk, not memory. One pass only.
/// A content that has a small range at hand gives it as one ready chunk (`init(ready:)`):
/// nothing is produced lazily, which keeps a small file's request free of extra async steps.
public struct VerifiedChunks: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    fileprivate enum Source: Sendable {
        case ready(Result<ByteBuffer, any Error>)
        case pull(@Sendable () async throws -> ByteBuffer?)
    }
    private let source: Source

    /// `produce` returns the next chunk, or nil after the last.
    public init(_ produce: @escaping @Sendable () async throws -> ByteBuffer?) {
        source = .pull(produce)
    }

    /// The whole range at once (or the error its first `next()` throws).
    public init(ready: Result<ByteBuffer, any Error>) {
        source = .ready(ready)
    }

    public func makeAsyncIterator() -> Iterator { Iterator(source: source) }

    public struct Iterator: AsyncIteratorProtocol, Sendable {
        fileprivate var source: Source?
        public mutating func next() async throws -> ByteBuffer? {
            switch source {
            case .ready(let result)?:
                source = nil
                return try result.get()
            case .pull(let produce)?:
                return try await produce()
            case nil:
                return nil
            }
        }
    }
}

public struct SiteStats: Sendable, Equatable {
    /// Bytes sent to peers, and received from them.
    public var uploaded: Int64
    public var downloaded: Int64
    public var peers: Int
    /// Verified bytes of `total` (both 0 while the size is unknown).
    public var verified: Int64
    public var total: Int64

    public init(uploaded: Int64 = 0, downloaded: Int64 = 0, peers: Int = 0, verified: Int64 = 0, total: Int64 = 0) {
        self.uploaded = uploaded
        self.downloaded = downloaded
        self.peers = peers
        self.verified = verified
        self.total = total
    }
}

/// The failures a `SiteContent` reports that the gateway answers in its own way; any other
/// error is a 502 naming the file.
public enum SiteContentError: Error, Equatable, CustomStringConvertible {
    /// The deadline passed first (504).
    case timedOut
    /// A file is no longer the one that verified: never served again, and reported once.
    case changedOnDisk(path: String)

    public var description: String {
        switch self {
        case .timedOut: "timed out"
        case .changedOnDisk(let path): "\(path) changed on disk since it was verified; its pieces are no longer served"
        }
    }
}
