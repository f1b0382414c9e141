import Bencode
import Hashing
import Merkle

/// Reads and validates an info dictionary (v1, v2 or hybrid).
struct InfoParser {
    struct Result {
        var name: String
        var pieceLength: Int
        var version: TorrentVersion
        var isSingleFile: Bool
        var files: [TorrentFile]
        var v1Entries: [V1Entry]
        var v1PieceHashes: [SHA1Digest]
        var pieceCount: Int
        var isPrivate: Bool
    }

    let info: BDictionary
    let limits: MetainfoLimits
    /// The name a multi-file torrent gets when its own leaves nothing safe: libtorrent uses
    /// the hex SHA-1 of the info dict.
    let fallbackName: String
    var sanitized: [String] = []

    init(info: BDictionary, limits: MetainfoLimits, fallbackName: String) {
        self.info = info
        self.limits = limits
        self.fallbackName = fallbackName
    }

    mutating func parse() throws(MetainfoError) -> Result {
        var version = TorrentVersion.v1
        if let mv = info["meta version"] {
            guard let v = mv.integer else { throw .wrongType(key: "meta version", expected: "integer", actual: mv.typeName) }
            guard v <= 2 else { throw .unknownVersion(v) }
            if v == 2 { version = .v2 }  // libtorrent reads 1 (or less) as v1
        }
        // Reading it as v1 would ignore the files the creator meant (libtorrent refuses too).
        if version == .v1 && info["file tree"] != nil { throw .fileTreeWithoutMetaVersion }
        let hasV1Fields = info["pieces"] != nil
        if version == .v2 && hasV1Fields { version = .hybrid }

        guard let plValue = info["piece length"] else { throw .missingKey("piece length") }
        guard let pl = plValue.integer else { throw .wrongType(key: "piece length", expected: "integer", actual: plValue.typeName) }
        if version.hasV2 {
            guard pl >= Int64(blockSize), pl & (pl - 1) == 0 else {
                throw .invalidPieceLength(pl, reason: "v2 needs a power of two of at least 16 KiB")
            }
        }
        guard pl > 0 else { throw .invalidPieceLength(pl, reason: "must be positive") }
        guard pl <= limits.maxPieceLength else { throw .invalidPieceLength(pl, reason: "more than the \(limits.maxPieceLength)-byte limit") }
        let pieceLength = Int(pl)

        guard let nameValue = info["name"] else { throw .missingKey("name") }
        guard let nameBytes = nameValue.bytes else { throw .wrongType(key: "name", expected: "string", actual: nameValue.typeName) }
        let name = try torrentName(nameBytes, version: version)
        if version.hasV2, let key = singleFileKey, PathRules.check(key, maxBytes: limits.maxPathComponentBytes) == .vanished {
            throw .emptyName  // the one file's name is the torrent's
        }

        var isPrivate = false
        if let p = info["private"] {
            guard let v = p.integer else { throw .wrongType(key: "private", expected: "integer", actual: p.typeName) }
            isPrivate = v == 1
        }

        var files: [TorrentFile] = []
        var v1Entries: [V1Entry] = []
        var isSingleFile = false
        var pieceCount = 0

        if version.hasV2 {
            guard let treeValue = info["file tree"] else { throw .missingKey("file tree") }
            guard let tree = treeValue.dictionary else { throw .wrongType(key: "file tree", expected: "dictionary", actual: treeValue.typeName) }
            if tree[""] != nil { throw .fileTreeRootIsFile }
            try walkTree(tree, path: [], into: &files)
            guard !files.isEmpty else { throw .noFiles }
            isSingleFile = files.count == 1 && files[0].path == [name]
            guard files.contains(where: { $0.length > 0 }) else { throw .emptyTorrent }
            // Every non-empty file starts on a piece boundary (BEP 52).
            var offset: Int64 = 0
            var pieces: Int64 = 0
            for i in files.indices {
                files[i].offset = offset
                let n = (files[i].length + pl - 1) / pl
                pieces += n
                offset += n * pl
                guard pieces <= limits.maxPieces else { throw .tooManyPieces(pieces, limit: limits.maxPieces) }
            }
            pieceCount = Int(pieces)
        }

        if version == .v2 && (info["files"] != nil || info["length"] != nil) {
            // A v1 file list without `pieces` adds no v1 view, but libtorrent still holds
            // it to the tree, and so do we: two descriptions of one torrent must agree.
            let entries = try parseV1Files(name: name)
            let total = entries.last.map { $0.offset + $0.length } ?? 0
            try checkHybrid(v1Entries: entries, v2Files: files, pieceLength: pl, v2Pieces: pieceCount, v1Pieces: Int((total + pl - 1) / pl))
        }

        var v1PieceHashes: [SHA1Digest] = []
        if version.hasV1 {
            guard let piecesValue = info["pieces"] else { throw .missingKey("pieces") }
            guard let piecesBytes = piecesValue.bytes else { throw .wrongType(key: "pieces", expected: "string", actual: piecesValue.typeName) }
            v1Entries = try parseV1Files(name: name)
            let total = v1Entries.last.map { $0.offset + $0.length } ?? 0
            guard total > 0 else { throw .emptyTorrent }
            let v1Pieces = (total + pl - 1) / pl
            guard v1Pieces <= limits.maxPieces else { throw .tooManyPieces(v1Pieces, limit: limits.maxPieces) }
            guard piecesBytes.count == Int(v1Pieces) * 20 else {
                throw .piecesFieldWrongSize(expected: Int(v1Pieces) * 20, actual: piecesBytes.count)
            }
            v1PieceHashes.reserveCapacity(Int(v1Pieces))
            var i = 0
            while i < piecesBytes.count {
                v1PieceHashes.append(SHA1Digest(bytes: piecesBytes[i..<(i + 20)])!)
                i += 20
            }
            if version == .hybrid {
                try checkHybrid(v1Entries: v1Entries, v2Files: files, pieceLength: pl, v2Pieces: pieceCount, v1Pieces: Int(v1Pieces))
            } else {
                isSingleFile = info["length"] != nil
                files = v1Entries.filter { !$0.isPad }.map {
                    TorrentFile(path: $0.path, length: $0.length, symlinkTarget: $0.symlinkTarget, offset: $0.offset)
                }
                guard !files.isEmpty else { throw .noFiles }
                guard files.contains(where: { $0.length > 0 }) else { throw .emptyTorrent }
                pieceCount = Int(v1Pieces)
            }
        }

        try checkUniquePaths(files)
        return Result(name: name, pieceLength: pieceLength, version: version, isSingleFile: isSingleFile, files: files,
                      v1Entries: v1Entries, v1PieceHashes: v1PieceHashes, pieceCount: pieceCount, isPrivate: isPrivate)
    }

    // MARK: v2 file tree

    private mutating func walkTree(_ dir: BDictionary, path: [String], into files: inout [TorrentFile]) throws(MetainfoError) {
        guard path.count < limits.maxPathDepth else {
            throw .invalidPathComponent(path: path.joined(separator: "/"), reason: "nested deeper than \(limits.maxPathDepth) levels")
        }
        for entry in dir.entries {
            let name = try component(entry.key, context: path)
            let here = path + [name]
            guard let node = entry.value.dictionary else {
                throw .wrongType(key: "file tree/\(here.joined(separator: "/"))", expected: "dictionary", actual: entry.value.typeName)
            }
            if let props = node[""] {
                guard node.count == 1 else { throw .fileAndDirectory(path: here.joined(separator: "/")) }
                guard let p = props.dictionary else {
                    throw .wrongType(key: "file tree/\(here.joined(separator: "/"))/\"\"", expected: "dictionary", actual: props.typeName)
                }
                files.append(try fileProperties(p, path: here))
                guard files.count <= limits.maxFiles else { throw .tooManyFiles(limit: limits.maxFiles) }
            } else {
                guard !node.isEmpty else { throw .emptyDirectory(path: here.joined(separator: "/")) }
                try walkTree(node, path: here, into: &files)
            }
        }
    }

    private func fileProperties(_ p: BDictionary, path: [String]) throws(MetainfoError) -> TorrentFile {
        let pathString = path.joined(separator: "/")
        var attributes = ""
        if let a = p["attr"] {
            guard let s = a.bytes else { throw .wrongType(key: "attr", expected: "string", actual: a.typeName) }
            attributes = String(decoding: s, as: UTF8.self)
        }
        if attributes.contains("p") { throw .padFileInFileTree(path: pathString) }
        if attributes.contains("l") {
            // libtorrent: a symlink takes no space whatever `length` says, and one without a
            // target is an empty regular file.
            let target = try symlinkTarget(p, path: pathString)
            return TorrentFile(path: path, length: 0, attributes: target == nil ? attributes.filter { $0 != "l" } : attributes,
                               symlinkTarget: target)
        }
        guard let lengthValue = p["length"] else { throw .missingKey("file tree/\(pathString)/length") }
        guard let length = lengthValue.integer else { throw .wrongType(key: "length", expected: "integer", actual: lengthValue.typeName) }
        guard length >= 0, length <= limits.maxFileLength else { throw .invalidFileLength(path: pathString, length: length) }
        var root: SHA256Digest? = nil
        if length > 0 {
            guard let rootValue = p["pieces root"] else { throw .missingPiecesRoot(path: pathString) }
            guard let raw = rootValue.bytes else { throw .wrongType(key: "pieces root", expected: "string", actual: rootValue.typeName) }
            guard let r = SHA256Digest(bytes: raw) else { throw .invalidPiecesRoot(path: pathString, reason: "\(raw.count) bytes instead of 32") }
            guard !r.isZero else { throw .invalidPiecesRoot(path: pathString, reason: "all zeros") }
            root = r
        }
        return TorrentFile(path: path, length: length, piecesRoot: root, attributes: attributes)
    }

    // MARK: v1 files

    private mutating func parseV1Files(name: String) throws(MetainfoError) -> [V1Entry] {
        if let lengthValue = info["length"] {
            guard info["files"] == nil else { throw .hybridMismatch("info has both 'length' and 'files'") }
            guard let length = lengthValue.integer else { throw .wrongType(key: "length", expected: "integer", actual: lengthValue.typeName) }
            guard length >= 0, length <= limits.maxFileLength else { throw .invalidFileLength(path: name, length: length) }
            // A symlink takes no space (libtorrent), which leaves a single-file torrent empty.
            let isLink = info["attr"]?.bytes?.contains(UInt8(ascii: "l")) ?? false
            return [V1Entry(path: [name], length: isLink ? 0 : length, isPad: false, offset: 0)]
        }
        guard let filesValue = info["files"] else { throw .missingKey("files") }
        guard let list = filesValue.list else { throw .wrongType(key: "files", expected: "list", actual: filesValue.typeName) }
        guard !list.isEmpty else { throw .noFiles }
        guard list.count <= limits.maxFiles else { throw .tooManyFiles(limit: limits.maxFiles) }
        var entries: [V1Entry] = []
        entries.reserveCapacity(list.count)
        var offset: Int64 = 0
        for item in list {
            guard let f = item.dictionary else { throw .wrongType(key: "files entry", expected: "dictionary", actual: item.typeName) }
            let attr = f["attr"]?.bytes ?? []
            let isPad = attr.contains(UInt8(ascii: "p"))
            guard let lengthValue = f["length"], var length = lengthValue.integer else { throw .missingKey("files/length") }
            var path: [String] = []
            var target: [String]? = nil
            if attr.contains(UInt8(ascii: "l")) {
                target = try symlinkTarget(f, path: "files entry \(entries.count)")
                length = 0  // as in the file tree: a symlink takes no space
            }
            if isPad {
                // BEP 47: readers must not rely on a pad's path, but one given must still be
                // a list of strings (libtorrent refuses the torrent otherwise).
                if let components = f["path"]?.list, let bad = components.first(where: { $0.bytes == nil }) {
                    throw .wrongType(key: "files/path component", expected: "string", actual: bad.typeName)
                }
                path = [".pad", String(length)]
            } else {
                guard let pv = f["path"] else { throw .missingKey("files/path") }
                guard let components = pv.list else { throw .wrongType(key: "files/path", expected: "list", actual: pv.typeName) }
                guard !components.isEmpty else { throw .invalidPathComponent(path: "", reason: "empty path list") }
                guard components.count <= limits.maxPathDepth else {
                    throw .invalidPathComponent(path: "", reason: "nested deeper than \(limits.maxPathDepth) levels")
                }
                for c in components {
                    guard let raw = c.bytes else { throw .wrongType(key: "files/path component", expected: "string", actual: c.typeName) }
                    path.append(try component(raw, context: path))
                }
            }
            let pathString = path.joined(separator: "/")
            guard length >= 0, length <= limits.maxFileLength else { throw .invalidFileLength(path: pathString, length: length) }
            entries.append(V1Entry(path: path, length: length, isPad: isPad, offset: offset, symlinkTarget: target))
            offset += length
            guard offset <= limits.maxTotalSize else { throw .totalSizeTooLarge(offset, limit: limits.maxTotalSize) }
        }
        return entries
    }

    /// The v1 list must describe the same files, in the same order and at the same
    /// offsets, as the v2 tree (libtorrent's `files_compatible`); pads fill the gaps.
    private func checkHybrid(v1Entries: [V1Entry], v2Files: [TorrentFile], pieceLength pl: Int64, v2Pieces: Int, v1Pieces: Int) throws(MetainfoError) {
        let real = v1Entries.filter { !$0.isPad }
        guard real.count == v2Files.count else {
            throw .hybridMismatch("v1 lists \(real.count) files, the file tree \(v2Files.count)")
        }
        for (a, b) in zip(real, v2Files) {
            guard a.path == b.path else {
                throw .hybridMismatch("v1 has '\(a.path.joined(separator: "/"))' where the file tree has '\(b.pathString)'")
            }
            guard a.length == b.length else {
                throw .hybridMismatch("'\(b.pathString)' is \(a.length) bytes in v1 and \(b.length) in v2")
            }
            guard a.length == 0 || a.offset == b.offset else { throw .misalignedFile(path: b.pathString) }
        }
        guard v1Pieces == v2Pieces else { throw .hybridMismatch("\(v1Pieces) v1 pieces but \(v2Pieces) v2 pieces") }
    }

    /// The target of a symlink entry, or nil when it has no `symlink path` list (libtorrent
    /// then reads the entry as an empty regular file).
    private func symlinkTarget(_ p: BDictionary, path: String) throws(MetainfoError) -> [String]? {
        guard let components = p["symlink path"]?.list, !components.isEmpty else { return nil }
        var target: [String] = []
        for c in components {
            guard let raw = c.bytes else { throw .invalidSymlink(path: path, reason: "a target component is not a string") }
            guard case .ok(let s) = PathRules.check(raw) else { throw .invalidSymlink(path: path, reason: "its target could leave the torrent") }
            target.append(s)
        }
        return target
    }

    // MARK: paths

    /// The key of the one file when `file tree` holds a single file at its root and there is
    /// no v1 `files` list: libtorrent's single-file v2 shape.
    private var singleFileKey: [UInt8]? {
        guard info["files"] == nil, let tree = info["file tree"]?.dictionary, tree.count == 1,
              let only = tree.entries.first, only.value.dictionary?[""] != nil else { return nil }
        return only.key
    }

    /// `name` as libtorrent 2.0.8 takes it: for a single-file torrent it is the file's name,
    /// so one that leaves nothing safe is refused; a multi-file torrent gets `_` for an empty
    /// one and the hex SHA-1 of its info dict for one that sanitizes away.
    private mutating func torrentName(_ raw: [UInt8], version: TorrentVersion) throws(MetainfoError) -> String {
        switch PathRules.check(raw, maxBytes: limits.maxPathComponentBytes) {
        case .ok(let s):
            return s
        case .sanitized(let s):
            sanitized.append(s)
            return s
        case .rejected(let reason) where raw.count > limits.maxPathComponentBytes:
            throw .invalidPathComponent(path: String(decoding: raw.prefix(64), as: UTF8.self) + "…", reason: reason)
        case .rejected, .vanished:
            break
        }
        if version == .v2, info["length"] == nil, let key = singleFileKey {
            // libtorrent names it after its one file (walkTree reports that name if sanitized).
            switch PathRules.check(key, maxBytes: limits.maxPathComponentBytes) {
            case .ok(let s), .sanitized(let s): return s
            case .vanished, .rejected: throw .emptyName
            }
        }
        if info["length"] != nil || singleFileKey != nil { throw .emptyName }
        let substitute = raw.isEmpty ? "_" : fallbackName
        sanitized.append(substitute)
        return substitute
    }

    private mutating func component(_ raw: [UInt8], context: [String]) throws(MetainfoError) -> String {
        switch PathRules.check(raw, maxBytes: limits.maxPathComponentBytes) {
        case .ok(let s):
            return s
        case .sanitized(let s):
            sanitized.append((context + [s]).joined(separator: "/"))
            return s
        case .vanished:
            // libtorrent accepts these too (the v1 rule: `_` when nothing is left).
            sanitized.append((context + ["_"]).joined(separator: "/"))
            return "_"
        case .rejected(let reason):
            let shown = (context + [String(decoding: raw, as: UTF8.self)]).joined(separator: "/")
            if context.isEmpty && raw.isEmpty && info["file tree"] == nil && info["files"] == nil { throw .emptyName }
            throw .invalidPathComponent(path: shown, reason: reason)
        }
    }

    private func checkUniquePaths(_ files: [TorrentFile]) throws(MetainfoError) {
        var seen = Set<String>()
        var dirs = Set<String>()
        for f in files {
            let p = f.pathString
            guard seen.insert(p).inserted, !dirs.contains(p) else { throw .duplicatePath(p) }
            var prefix = ""
            for c in f.path.dropLast() {
                prefix = prefix.isEmpty ? c : prefix + "/" + c
                if seen.contains(prefix) { throw .duplicatePath(prefix) }
                dirs.insert(prefix)
            }
        }
    }
}
