import Foundation
import Hashing
import Merkle
import Metainfo
import NIOCore
import PeerWire
import Storage
import Testing
@testable import Swarm

@Suite struct PiecePickerTests {
    final class Key {}
    let a = Key(), b = Key()
    var ka: ObjectIdentifier { ObjectIdentifier(a) }
    var kb: ObjectIdentifier { ObjectIdentifier(b) }

    private func set(_ count: Int, _ pieces: [Int]) -> PiecePicker.PeerHas {
        var s = PieceSet(count: count)
        for p in pieces { s.insert(p) }
        return .some(s)
    }

    @Test func theRarestPieceComesFirst() {
        var picker = PiecePicker(spans: [16_384, 16_384, 16_384], have: PieceSet(count: 3), start: 0)
        picker.peerJoined(set(3, [0, 1, 2]))
        picker.peerJoined(set(3, [0, 2]))
        picker.peerJoined(set(3, [2]))
        // Piece 1 is held by one peer, piece 0 by two, piece 2 by three.
        let first = picker.pick(for: ka, has: .all, count: 1, now: 0) { _ in false }
        #expect(first.map(\.piece) == [1])
        let next = picker.pick(for: ka, has: .all, count: 1, now: 0) { _ in false }
        #expect(next.map(\.piece) == [0])
    }

    @Test func aPieceIsWorkedOnByOnePeerUntilTheEndGame() {
        var picker = PiecePicker(spans: [65_536, 65_536], have: PieceSet(count: 2), start: 0)
        let first = picker.pick(for: ka, has: .all, count: 2, now: 0) { _ in false }
        #expect(first.map(\.piece) == [0, 0])
        // Peer b starts the other piece rather than joining a's.
        let second = picker.pick(for: kb, has: .all, count: 8, now: 0) { _ in false }
        #expect(Set(second.map(\.piece)) == [1])
        #expect(second.count == 4)
        // a continues its own piece.
        let more = picker.pick(for: ka, has: .all, count: 8, now: 0) { _ in false }
        #expect(more.map(\.begin) == [32_768, 49_152])
    }

    @Test func endGameAsksASecondPeerOnlyForSlowBlocks() {
        var picker = PiecePicker(spans: [32_768], have: PieceSet(count: 1), start: 0)
        let asked = picker.pick(for: ka, has: .all, count: 2, now: 10) { _ in false }
        #expect(asked.count == 2)
        #expect(picker.pick(for: kb, has: .all, count: 2, now: 10.1) { _ in false }.isEmpty)
        let duplicate = picker.pick(for: kb, has: .all, count: 2, now: 10 + PiecePicker.endgameDelay) { _ in false }
        #expect(Set(duplicate) == Set(asked))
        // Never twice to the same peer.
        #expect(picker.pick(for: ka, has: .all, count: 2, now: 20) { asked.contains($0) }.isEmpty)
    }

    @Test func deadlinesGoFirstAndALostBlockIsAskedAgain() {
        var picker = PiecePicker(spans: [16_384, 16_384, 16_384, 16_384], have: PieceSet(count: 4), start: 0)
        picker.prioritize(3..<4, deadline: 5)
        let r = picker.pick(for: ka, has: .all, count: 1, now: 0) { _ in false }
        #expect(r.map(\.piece) == [3])
        picker.lost(r[0])
        #expect(picker.pick(for: kb, has: .all, count: 1, now: 0) { _ in false } == r)
    }

    @Test func aPieceIsDoneOnlyWhenVerifiedAndAFailureStartsItOver() {
        var picker = PiecePicker(spans: [20_000], have: PieceSet(count: 1), start: 0)
        let r = picker.pick(for: ka, has: .all, count: 4, now: 0) { _ in false }
        #expect(r.map(\.length) == [16_384, 3_616])
        #expect(picker.received(r[0]) == false)
        #expect(picker.received(r[0]) == nil)  // a duplicate
        #expect(picker.received(r[1]) == true)
        #expect(!picker.isComplete)
        picker.failed(0, singleSource: false)
        #expect(picker.pick(for: kb, has: .all, count: 4, now: 0) { _ in false }.count == 2)
        #expect(picker.received(r[0]) == false)
        #expect(picker.received(r[1]) == true)
        picker.verified(0)
        #expect(picker.isComplete)
    }

    @Test func nothingIsAskedOfAPeerWithoutThePiece() {
        var picker = PiecePicker(spans: [16_384, 16_384], have: PieceSet(count: 2), start: 0)
        #expect(picker.pick(for: ka, has: set(2, []), count: 4, now: 0) { _ in false }.isEmpty)
        #expect(picker.pick(for: ka, has: set(2, [1]), count: 4, now: 0) { _ in false }.map(\.piece) == [1])
    }
}

@Suite struct PieceCheckTests {
    /// Data for each piece of a fixture, as peers would send it.
    private func span(_ f: Fixture, _ check: PieceCheck, _ p: Int) -> [UInt8] {
        let (offset, length) = check.span(ofPiece: p)
        var out = [UInt8](repeating: 0, count: length)
        out.withUnsafeMutableBytes { try! f.torrent.reader.read(offset: offset, into: $0) }
        return out
    }

    @Test(arguments: [true, false])
    func everyPieceVerifiesAndAnyFlippedByteIsCaught(hybrid: Bool) throws {
        let f = try Fixture(files: ["big.bin": content(1, 100_000), "small.txt": content(2, 5_000), "mid.bin": content(3, 40_000)],
                            hybrid: hybrid, pieceLength: 32_768)
        let check = PieceCheck(metainfo: f.metainfo)
        #expect(check.missingLayers.isEmpty)
        for p in 0..<f.metainfo.pieceCount {
            var data = span(f, check, p)
            guard case .verified(let leaves) = data.withUnsafeBytes({ check.check(piece: p, data: $0) }) else {
                Issue.record("piece \(p) did not verify")
                continue
            }
            #expect(leaves.count == (data.count + 16_383) / 16_384)
            data[data.count / 2] ^= 1
            #expect(data.withUnsafeBytes { check.check(piece: p, data: $0) } != .verified(leaves: leaves))
        }
    }

    @Test func pieceLayersFetchedWithHashRequestsProveOutToTheRoot() throws {
        // 600 pieces of 16 KiB: two requests of 512 hashes, each proved by uncles.
        let f = try Fixture(files: ["long.bin": content(7, 600 * 16_384 - 100)], hybrid: false)
        let file = try #require(f.metainfo.files.firstIndex { $0.pathString == "long.bin" })
        let root = try #require(f.metainfo.files[file].piecesRoot)
        var stripped = f.metainfo
        stripped.pieceLayers = [:]
        var check = PieceCheck(metainfo: stripped)
        #expect(check.missingLayers == [file])
        let requests = check.layerRequests(file: file)
        #expect(requests.map(\.index) == [0, 512])
        #expect(requests.allSatisfy { $0.length == 512 && $0.proofLayers == 9 })
        let tree = try #require(f.torrent.trees[root])
        // A lie is refused and stores nothing.
        var wrong = tree.hashes(baseLayer: 0, index: 0, length: 512, proofLayers: 9)!
        wrong[3] = .zero
        let refused = check.accept(hashes: wrong, for: requests[0], file: file)
        #expect(!refused)
        for r in requests.reversed() {  // answers may come in any order
            let answer = try #require(tree.hashes(baseLayer: Int(r.baseLayer), index: Int(r.index), length: Int(r.length), proofLayers: Int(r.proofLayers)))
            #expect(answer.count == 512 + 1)  // one uncle: the other half of the tree
            let accepted = check.accept(hashes: answer, for: r, file: file)
            #expect(accepted)
        }
        #expect(check.layers[root] == f.metainfo.pieceLayers[root])
        #expect(check.missingLayers.isEmpty)
    }
}

@Suite struct FetchDiskTests {
    /// A FIFO where the download record belongs is not read (that would block forever) and
    /// not silently ignored: the start says why, and what is on disk is hashed instead.
    @Test func aFIFOAsTheDownloadRecordIsReportedAndTheDataHashed() throws {
        let f = try Fixture(files: ["a.bin": content(4, 40_000)])
        let record = f.dir.path + ".fetch"
        #expect(mkfifo(record, 0o600) == 0)
        defer { unlink(record) }
        let reader = PieceReader(metainfo: f.metainfo, directory: f.dir.path, writable: true)
        let start = try FetchDisk.start(check: PieceCheck(metainfo: f.metainfo), reader: reader, directory: f.dir.path,
                                        recordPath: record, recheck: false)
        #expect(start.recordProblem == .notARegularFile(record, kind: "a FIFO"))
        #expect(start.fromRecord == 0 && start.rechecked == f.metainfo.pieceCount && start.pieces.isFull)
        let rechecked = try FetchDisk.start(check: PieceCheck(metainfo: f.metainfo), reader: reader, directory: f.dir.path,
                                            recordPath: record, recheck: true)
        #expect(rechecked.recordProblem == nil, "--recheck does not look at the record")
    }
}

@Suite(.serialized) struct FetchLoopbackTests {

    @Test func aMagnetDownloadIsByteIdenticalAndARestartReusesTheRecord() async throws {
        let source = try Fixture(files: ["index.html": content(1, 70_000), "css/site.css": content(2, 3_000),
                                         "img/big.png": content(3, 300_000), "empty.txt": []])
        let seeder = Seeder()
        defer { seeder.shutdown() }
        seeder.add(source.torrent)
        let port = try seeder.listen(host: "127.0.0.1", port: 0).port!
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("webseed-fetch-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        let out = work.appendingPathComponent("out").path
        let options = FetchOptions(directory: out, defaultParent: work.path, stateDirectory: work.appendingPathComponent("state").path)
        try FileManager.default.createDirectory(atPath: options.stateDirectory, withIntermediateDirectories: true)

        let events = EventBox()
        let fetcher = Seeder()
        let magnet = MagnetLink(v2InfoHash: source.metainfo.v2InfoHash)
        let handle = fetcher.fetch(magnet: magnet, metainfo: nil, options: options) { events.add($0) }
        _ = try fetcher.listen(host: "127.0.0.1", port: 0)
        fetcher.connect(host: "127.0.0.1", port: port)
        #expect(await waitFor(20) { handle.progress.complete })
        fetcher.shutdown()
        for path in ["index.html", "css/site.css", "img/big.png", "empty.txt"] {
            #expect(FileManager.default.contents(atPath: out + "/" + path).map { [UInt8]($0) } == source.bytes(path), "\(path)")
        }

        // Started again: the record vouches for everything, nothing is fetched or hashed.
        let again = EventBox()
        let second = Seeder()
        let handle2 = second.fetch(magnet: magnet, metainfo: nil, options: options) { again.add($0) }
        #expect(await waitFor(20) { handle2.progress.complete })
        second.shutdown()
        let resumed = again.all.compactMap { e -> (Int, Int, Int)? in
            if case .resumed(_, let pieces, _, let fromRecord, let rechecked) = e { return (pieces, fromRecord, rechecked) }
            return nil
        }
        #expect(resumed.count == 1)
        #expect(resumed.first.map { $0.0 == source.metainfo.pieceCount && $0.1 == $0.0 && $0.2 == 0 } == true)
        #expect(handle2.progress.downloaded == 0)
    }

    @Test func aDirectoryHoldingSomethingElseIsRefused() async throws {
        let source = try Fixture(files: ["a.txt": content(1, 100)])
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("webseed-fetch-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        let out = work.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try Data([1, 2, 3]).write(to: out.appendingPathComponent("precious.doc"))
        let options = FetchOptions(directory: out.path, defaultParent: work.path, stateDirectory: work.path)
        let events = EventBox()
        let fetcher = Seeder()
        defer { fetcher.shutdown() }
        _ = fetcher.fetch(magnet: nil, metainfo: source.metainfo, options: options) { events.add($0) }
        #expect(await waitFor(10) { events.all.contains { if case .failed = $0 { true } else { false } } })
        let failure = events.all.compactMap { e -> String? in if case .failed(let f) = e { "\(f)" } else { nil } }.first
        #expect(failure?.contains("precious.doc") == true)
        #expect(FileManager.default.contents(atPath: out.appendingPathComponent("precious.doc").path) == Data([1, 2, 3]))
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("a.txt").path))
    }
}

final class EventBox: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [FetchEvent] = []
    func add(_ e: FetchEvent) { lock.lock(); events.append(e); lock.unlock() }
    var all: [FetchEvent] { lock.lock(); defer { lock.unlock() }; return events }
}
