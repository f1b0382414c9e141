/// Little-endian fields of the records Storage keeps in the state directory: written by
/// `RecordWriter`, read back by `ByteReader`, which never reads past the end.
struct RecordWriter {
    var out: [UInt8]

    mutating func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { out += $0 } }
    mutating func i64(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }

    /// 56 bytes: size, mtime s and ns, ctime s and ns, inode, device.
    mutating func generation(_ g: FileGeneration) {
        i64(g.size)
        i64(g.modified.seconds); i64(g.modified.nanoseconds)
        i64(g.changed.seconds); i64(g.changed.nanoseconds)
        i64(Int64(bitPattern: g.inode)); i64(Int64(bitPattern: g.device))
    }
}

struct ByteReader {
    let bytes: [UInt8]
    var pos = 0
    var atEnd: Bool { pos == bytes.count }
    mutating func take(_ n: Int) -> [UInt8]? {
        guard n >= 0, n <= bytes.count - pos else { return nil }
        defer { pos += n }
        return Array(bytes[pos..<(pos + n)])
    }
    mutating func u32() -> Int? { take(4).map { Int(UInt32(littleEndian: $0.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })) } }
    mutating func i64() -> Int64? { take(8).map { Int64(littleEndian: $0.withUnsafeBytes { $0.loadUnaligned(as: Int64.self) }) } }

    mutating func generation() -> FileGeneration? {
        guard let size = i64(), let ms = i64(), let mns = i64(), let cs = i64(), let cns = i64(), let inode = i64(), let device = i64()
        else { return nil }
        return FileGeneration(size: size, modified: FileTime(seconds: ms, nanoseconds: mns), changed: FileTime(seconds: cs, nanoseconds: cns),
                              inode: UInt64(bitPattern: inode), device: UInt64(bitPattern: device))
    }
}
