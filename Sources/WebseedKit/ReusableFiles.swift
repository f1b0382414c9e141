import Hashing
import Storage
import Swarm

/// Files a new version of a site can take from an old one instead of the network
/// (`FetchOptions.reuse`): `get` on a name and the gateway give a name's next download
/// the complete files of the version they hold.
enum ReusableFiles {
    /// The files of `torrent` whose every piece verified, by v2 pieces root → absolute
    /// path. Empty files and symlinks are left out (nothing to reuse). Whether a file is
    /// still the one that verified is not asked: linking it elsewhere changes its ctime, and
    /// the fetch verifies every reused file again anyway.
    static func byPiecesRoot(_ torrent: SeedTorrent) -> [SHA256Digest: String] {
        var out: [SHA256Digest: String] = [:]
        let directory = resolvedPath(torrent.directory)
        for (i, f) in torrent.metainfo.files.enumerated() where f.length > 0 && !f.isSymlink {
            guard let root = f.piecesRoot, out[root] == nil,
                  torrent.isVerified(file: i, range: 0..<f.length) else { continue }
            out[root] = directory + "/" + f.pathString
        }
        return out
    }
}
