import Bencode
import Hashing

/// Writes a v2 or hybrid info dict straight to canonical bencoding. The keys of each
/// dict are written in their sorted order by construction and files arrive in file-tree
/// order, so no intermediate value tree is needed: for a site of 20,000 files that tree
/// would cost more memory than everything else `create` holds.
struct InfoWriter {
    var out: [UInt8] = []

    mutating func info(name: String, pieceLength: Int, files: [HashedFile], hybrid: Bool, singleFile: Bool,
                       v1Entries: [V1Entry], v1Hashes: [SHA1Digest], isPrivate: Bool) {
        out.reserveCapacity(files.count * (hybrid ? 160 : 80) + v1Hashes.count * 20 + 256)
        out.append(UInt8(ascii: "d"))
        // Sorted: "file tree" < "files" < "length" < "meta version" < "name" < "piece length" < "pieces" < "private".
        key("file tree")
        tree(files[...], depth: 0)
        if hybrid && !singleFile {
            key("files")
            out.append(UInt8(ascii: "l"))
            for e in v1Entries {
                out.append(UInt8(ascii: "d"))
                if e.isPad { key("attr"); string("p") }
                key("length"); integer(e.length)
                key("path")
                out.append(UInt8(ascii: "l"))
                for c in e.path { string(c) }
                out.append(UInt8(ascii: "e"))
                out.append(UInt8(ascii: "e"))
            }
            out.append(UInt8(ascii: "e"))
        }
        if hybrid && singleFile { key("length"); integer(files[0].length) }
        key("meta version"); integer(2)
        key("name"); string(name)
        key("piece length"); integer(Int64(pieceLength))
        if hybrid {
            key("pieces")
            decimal(v1Hashes.count * 20)
            out.append(UInt8(ascii: ":"))
            for h in v1Hashes { withUnsafeBytes(of: h) { out.append(contentsOf: $0[0..<20]) } }
        }
        if isPrivate { key("private"); integer(1) }
        out.append(UInt8(ascii: "e"))
    }

    /// One directory level: keys are the distinct path components at `depth`, already in
    /// sorted order because `files` is in tree order.
    private mutating func tree(_ files: ArraySlice<HashedFile>, depth: Int) {
        out.append(UInt8(ascii: "d"))
        var i = files.startIndex
        while i < files.endIndex {
            let component = files[i].path[depth]
            var j = i + 1
            while j < files.endIndex && TorrentBuilder.compareBytes(files[j].path[depth], component) == 0 { j += 1 }
            string(component)
            if files[i].path.count == depth + 1 {
                let f = files[i]
                out.append(contentsOf: "d0:d".utf8)
                key("length"); integer(f.length)
                if let t = f.tree {
                    key("pieces root")
                    out.append(contentsOf: "32:".utf8)
                    withUnsafeBytes(of: t.root) { out.append(contentsOf: $0) }
                }
                out.append(contentsOf: "ee".utf8)
            } else {
                tree(files[i..<j], depth: depth + 1)
            }
            i = j
        }
        out.append(UInt8(ascii: "e"))
    }

    private mutating func key(_ k: StaticString) {
        decimal(k.utf8CodeUnitCount)
        out.append(UInt8(ascii: ":"))
        k.withUTF8Buffer { out.append(contentsOf: $0) }
    }

    private mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { bytes in
            decimal(bytes.count)
            out.append(UInt8(ascii: ":"))
            out.append(contentsOf: bytes)
        }
    }

    private mutating func integer(_ v: Int64) {
        out.append(UInt8(ascii: "i"))
        if v < 0 { out.append(UInt8(ascii: "-")) }
        decimal(Int(v.magnitude))
        out.append(UInt8(ascii: "e"))
    }

    /// A non-negative number in decimal, without going through String.
    private mutating func decimal(_ n: Int) {
        precondition(n >= 0)
        if n < 10 { out.append(UInt8(ascii: "0") + UInt8(n)); return }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for any Int
        var count = 0
        var v = n
        withUnsafeMutableBytes(of: &digits) { buf in
            while v > 0 {
                buf[23 - count] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
                count += 1
            }
            out.append(contentsOf: buf[(24 - count)...])
        }
    }

    /// The whole torrent: `top`'s entries with the pre-encoded info dict at its sorted place.
    static func topLevel(_ top: BDictionary, info: [UInt8]) -> [UInt8] {
        let infoKey = Array("info".utf8)
        var out: [UInt8] = [UInt8(ascii: "d")]
        out.reserveCapacity(info.count + 1024)
        var wroteInfo = false
        func writeInfo() {
            out.append(contentsOf: "4:info".utf8)
            out.append(contentsOf: info)
            wroteInfo = true
        }
        for e in top.entries {
            if !wroteInfo && infoKey.lexicographicallyPrecedes(e.key) { writeInfo() }
            BValue.dictionary(BDictionary(entries: [e])).encodedEntries(into: &out)
        }
        if !wroteInfo { writeInfo() }
        out.append(UInt8(ascii: "e"))
        return out
    }
}
