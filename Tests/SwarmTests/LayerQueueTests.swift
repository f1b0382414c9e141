import Hashing
import PeerWire
import Testing
@testable import Swarm

/// The order and the bounds of piece-layer hash requests, without a machine.
@Suite struct LayerQueueTests {
    final class Peer {
        var key: ObjectIdentifier { ObjectIdentifier(self) }
    }

    /// One request per file, told apart by the file number in the root's first byte.
    private func request(_ file: Int) -> (request: HashRequest, file: Int) {
        var root = [UInt8](repeating: 0, count: 32)
        root[0] = UInt8(file & 0xFF)
        root[1] = UInt8(file >> 8)
        return (HashRequest(piecesRoot: SHA256Digest(bytes: root)!, baseLayer: 2, index: 0, length: 4, proofLayers: 1), file)
    }

    private func files(_ sent: [(peer: ObjectIdentifier, requests: [HashRequest])]) -> [Int] {
        sent.flatMap(\.requests).map { Int($0.piecesRoot.bytes[0]) | Int($0.piecesRoot.bytes[1]) << 8 }
    }

    @Test func eachPeerGetsUpToItsBoundInOrder() {
        var q = LayerQueue((0..<150).map(request))
        let a = Peer(), b = Peer()
        let sent = q.assign(to: [a.key, b.key], now: 0)
        #expect(sent.map(\.peer) == [a.key, b.key])
        let background = LayerQueue.perPeer - LayerQueue.reserved
        #expect(sent.map(\.requests.count) == [background, background])
        #expect(files(sent) == Array(0..<(2 * background)))
        #expect(q.assign(to: [a.key, b.key], now: 0).isEmpty)  // no room until answers come
        #expect(q.answered(request(0).request, by: b.key) == nil)  // not asked of b: ignored
        #expect(q.answered(request(0).request, by: a.key) == 0)
        #expect(files(q.assign(to: [a.key, b.key], now: 1)) == [2 * background])
    }

    @Test func aWantedFileGoesFirstEvenWhenThePipelineIsFull() {
        var q = LayerQueue((0..<200).map(request))
        let a = Peer()
        #expect(files(q.assign(to: [a.key], now: 0)) == Array(0..<(LayerQueue.perPeer - LayerQueue.reserved)))
        q.prioritize([197, 198])
        #expect(files(q.assign(to: [a.key], now: 0)) == [197, 198])
        // The reserved room is for such files only, up to the bound.
        q.prioritize(Array(150..<160))
        #expect(files(q.assign(to: [a.key], now: 0)) == Array(150..<156))
        #expect(q.outstanding(a.key) == LayerQueue.perPeer)
        #expect(q.isPending(file: 199))
        #expect(!q.isEmpty)
    }

    @Test func whatALeavingOrSilentPeerOwedIsAskedAgainFirst() {
        var q = LayerQueue((0..<100).map(request))
        let a = Peer(), b = Peer()
        let background = LayerQueue.perPeer - LayerQueue.reserved
        _ = q.assign(to: [a.key], now: 0)
        q.peerLeft(a.key)
        #expect(files(q.assign(to: [b.key], now: 1)) == Array(0..<background))
        #expect(q.expire(now: 1 + LayerQueue.timeout) == 0)
        #expect(q.expire(now: 1.5 + LayerQueue.timeout) == background)
        #expect(files(q.assign(to: [a.key], now: 40)).sorted() == Array(0..<background))
    }

    @Test func aPeerThatRejectsIsAskedNothingMore() {
        var q = LayerQueue((0..<3).map(request))
        let a = Peer(), b = Peer()
        _ = q.assign(to: [a.key], now: 0)
        #expect(q.answered(request(1).request, by: a.key) == 1)
        q.retry(request(1).request, file: 1, refusedBy: a.key)
        #expect(q.assign(to: [a.key], now: 1).isEmpty)
        #expect(files(q.assign(to: [a.key, b.key], now: 1)) == [1])
    }
}
