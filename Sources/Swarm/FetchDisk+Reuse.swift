import Hashing
import Metainfo
import Storage

#if canImport(Glibc)
import Glibc
#endif

extension FetchDisk {
    /// Pieces a reused file verified, with their leaf hashes.
    typealias ReusedFile = (file: Int, pieces: [(piece: Int, leaves: [SHA256Digest])])

    /// Takes files of the torrent from elsewhere on this host instead of the network: each
    /// file whose v2 pieces root is in `sources` (root → absolute path of a complete file)
    /// and that is not in `directory` yet (`present`) is hard-linked there (copied across
    /// filesystems), then every piece of it is verified through a descriptor of its own
    /// before the torrent's reader ever opens it. A file that does not verify is unlinked
    /// again (so a download never writes into the file it was linked from) and downloaded
    /// like any missing file. Costs one link and one read per reused file, a dictionary
    /// look-up for the others.
    static func reuse(check: PieceCheck, directory: String, from sources: [SHA256Digest: String],
                      present: [String: Int64]) throws(FetchError) -> [ReusedFile] {
        let m = check.metainfo
        guard !sources.isEmpty, m.version.hasV2 else { return [] }
        var made = Set<String>()
        var out: [ReusedFile] = []
        var buffer = [UInt8]()
        for (i, f) in m.files.enumerated() where f.length > 0 && !f.isSymlink {
            guard let root = f.piecesRoot, let source = sources[root], present[f.pathString] == nil else { continue }
            let target = directory + "/" + f.pathString
            var st = stat()
            guard lstat(target, &st) != 0, errno == ENOENT else { continue }
            do {
                try FilePlacement.makeParents(of: f.pathString, under: directory, made: &made)
                try FilePlacement.linkOrCopy(source, to: target)
            } catch {
                continue  // the source is gone or unreadable: the file is downloaded
            }
            if let pieces = verify(file: i, at: target, check: check, buffer: &buffer) {
                out.append((i, pieces))
            } else {
                unlink(target)
            }
        }
        return out
    }

    /// Every piece of file `i`, read from `path`, checked against the torrent; nil if one
    /// does not verify or the file is not its length.
    private static func verify(file i: Int, at path: String, check: PieceCheck, buffer: inout [UInt8]) -> [(piece: Int, leaves: [SHA256Digest])]? {
        let m = check.metainfo
        let f = m.files[i]
        guard let (fd, st) = openOwnFile(path), Int64(st.st_size) == f.length else { return nil }
        defer { close(fd) }
        let pl = Int64(m.pieceLength)
        let first = Int(f.offset / pl)
        let count = Int((f.length + pl - 1) / pl)
        var pieces: [(piece: Int, leaves: [SHA256Digest])] = []
        pieces.reserveCapacity(count)
        for p in first..<(first + count) {
            let (offset, length) = check.span(ofPiece: p)
            if buffer.count < length { buffer = [UInt8](repeating: 0, count: length) }
            let ok = buffer.withUnsafeMutableBytes { raw in readFully(fd, raw.baseAddress!, length, at: offset - f.offset) }
            guard ok, case .verified(let leaves) = buffer.withUnsafeBytes({ check.check(piece: p, data: UnsafeRawBufferPointer(rebasing: $0[0..<length])) })
            else { return nil }
            pieces.append((p, leaves))
        }
        return pieces
    }

    private static func openOwnFile(_ path: String) -> (Int32, stat)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            return nil
        }
        return (fd, st)
    }

    private static func readFully(_ fd: Int32, _ into: UnsafeMutableRawPointer, _ count: Int, at offset: Int64) -> Bool {
        var got = 0
        while got < count {
            let n = pread(fd, into + got, count - got, off_t(offset) + off_t(got))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            got += n
        }
        return true
    }
}
