import Locking
import Gateway
import Hashing
import Merkle
import Metainfo
import NIOCore

/// An in-memory site: files given as bytes, packaged as a v2 torrent here (leaf hashes,
/// Merkle trees, `TorrentBuilder`), and served the way `SiteContent` promises: every chunk
/// it yields is one 16 KiB block checked against the leaves it was created with. Tests
/// change `stored` bytes to play a file edited on disk after it was packaged.
final class FakeSite: SiteContent {
    let torrent: Metainfo
    private let leaves: [[SHA256Digest]]
    private let stored: Locked<[[UInt8]]>
    /// How long `ready` and the first chunk take (nil: never, until the deadline).
    let delay: Duration?
    let asked = Locked<[(file: Int, range: Range<Int64>)]>([])

    /// `hybrid`: with a v1 side (SHA-1 pieces, BEP 47 pads); `singleFile`: one file named `name`.
    init(name: String = "site", files: [String: [UInt8]], delay: Duration? = .zero, hybrid: Bool = false, singleFile: Bool = false) throws {
        let hashed = files.map { path, bytes in
            let blocks = stride(from: 0, to: bytes.count, by: blockSize).map { Digests.sha256(bytes[$0..<min(bytes.count, $0 + blockSize)]) }
            // v1 pieces are one block here; the last is zero-padded unless the torrent is one file.
            let v1: [SHA1Digest] = !hybrid ? [] : stride(from: 0, to: bytes.count, by: blockSize).map { at in
                let piece = Array(bytes[at..<min(bytes.count, at + blockSize)])
                return Digests.sha1(singleFile ? piece : piece + [UInt8](repeating: 0, count: blockSize - piece.count))
            }
            return HashedFile(path: path.split(separator: "/").map(String.init), length: Int64(bytes.count),
                              tree: blocks.isEmpty ? nil : MerkleTree(leaves: blocks), v1PieceHashes: v1)
        }
        torrent = try TorrentBuilder.build(name: name, pieceLength: blockSize, files: hashed, hybrid: hybrid, singleFile: singleFile).metainfo
        // In the torrent's file order, as the gateway indexes them.
        let ordered = torrent.files.map { files[$0.pathString]! }
        leaves = torrent.files.map { f in hashed.first { $0.path == f.path }!.tree?.layers[0] ?? [] }
        stored = Locked(ordered)
        self.delay = delay
    }

    var id: String { SiteID.encode(torrent.v2InfoHash!) }
    func file(_ path: String) -> Int { torrent.files.firstIndex { $0.pathString == path }! }

    /// Changes one byte of a file "on disk".
    func corrupt(_ path: String, at offset: Int) {
        let i = file(path)
        stored.withLock { $0[i][offset] ^= 0xff }
    }

    // MARK: SiteContent

    var metainfo: Metainfo? { torrent }

    func ready(deadline: NIODeadline) async throws -> Metainfo {
        try await wait(until: deadline)
        return torrent
    }

    func bytes(file: Int, range: Range<Int64>, deadline: NIODeadline) -> VerifiedChunks {
        asked.withLock { $0.append((file, range)) }
        let next = Locked<Int64?>(nil)
        return VerifiedChunks { [self] in
            let at: Int64
            if let n = next.withLock({ $0 }) { at = n } else {
                try await wait(until: deadline)
                at = range.lowerBound
            }
            guard at < range.upperBound else { return nil }
            // Up to the end of the block `at` is in: one block is checked per chunk.
            let block = Int(at) / blockSize
            let end = min(range.upperBound, Int64((block + 1) * blockSize))
            let bytes = stored.withLock { $0[file] }
            let whole = bytes[(block * blockSize)..<min(bytes.count, (block + 1) * blockSize)]
            guard Digests.sha256(whole) == leaves[file][block] else {
                throw SiteContentError.changedOnDisk(path: torrent.files[file].pathString)
            }
            next.withLock { $0 = end }
            return ByteBuffer(bytes: bytes[Int(at)..<Int(end)])
        }
    }

    var stats: SiteStats { SiteStats(uploaded: 1000, downloaded: 0, peers: 2, verified: torrent.totalSize, total: torrent.totalSize) }

    private func wait(until deadline: NIODeadline) async throws {
        let left = Duration.nanoseconds((deadline - .now()).nanoseconds)
        if let delay, delay < left {
            try await Task.sleep(for: delay)
            return
        }
        try await Task.sleep(for: max(.zero, left))
        throw SiteContentError.timedOut
    }
}

/// Yields more bytes than asked for: the gateway must not pass them on.
struct OverlongSite: SiteContent {
    let site: FakeSite
    var metainfo: Metainfo? { site.torrent }
    func ready(deadline: NIODeadline) async throws -> Metainfo { site.torrent }
    func bytes(file: Int, range: Range<Int64>, deadline: NIODeadline) -> VerifiedChunks {
        VerifiedChunks { ByteBuffer(repeating: 0x41, count: Int(range.count) + 1) }
    }
    var stats: SiteStats { SiteStats() }
}

/// Deterministic bytes.
func content(_ seed: UInt8, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) } }
