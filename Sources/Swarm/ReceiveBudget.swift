import NIOCore
import PeerWire

/// One memory budget for what the peer wire decoders hold of messages not yet complete,
/// shared by every connection of a seeder (issue 16: connections each holding an almost
/// complete 1 MiB message raised the process by 240 MB). Each connection may hold
/// `allowance` bytes for free (a piece message in flight is normal); what it holds beyond
/// that is charged to the shared `limit`, and a connection whose bytes would not fit is
/// closed. Lives on the seeder's loop.
final class ReceiveBudget {
    /// One connection's share.
    final class Account {
        fileprivate var charged = 0
        fileprivate var released = false
    }

    let limit: Int
    let allowance: Int
    /// Bytes beyond the allowances, over all connections: never more than `limit`.
    private(set) var charged = 0
    private(set) var peak = 0
    /// Connections refused because the budget was spent.
    private(set) var refusals = 0

    init(limit: Int, allowance: Int) {
        self.limit = limit
        self.allowance = allowance
    }

    /// Records that `account` now holds `bytes`; false (and nothing recorded) when the
    /// shared budget cannot take the growth.
    func hold(_ bytes: Int, in account: Account) -> Bool {
        guard !account.released else { return true }
        let share = max(0, bytes - allowance)
        let next = charged - account.charged + share
        if share > account.charged && next > limit {
            refusals += 1
            return false
        }
        charged = next
        peak = max(peak, charged)
        account.charged = share
        return true
    }

    /// The connection is gone: its share is free again, and later decodes charge nothing.
    func release(_ account: Account) {
        _ = hold(0, in: account)
        account.released = true
    }
}

struct ReceiveBudgetExceeded: Error, CustomStringConvertible {
    let held: Int
    let limit: Int
    var description: String { "holds \(held) bytes of unfinished messages while the shared \(limit)-byte receive budget is spent" }
}

/// `PeerWireDecoder` whose buffered bytes are charged to a `ReceiveBudget` after every step.
struct BudgetedDecoder: NIOSingleStepByteToMessageDecoder {
    typealias InboundOut = PeerWireFrame
    private var inner = PeerWireDecoder()
    let budget: ReceiveBudget
    let account: ReceiveBudget.Account

    init(budget: ReceiveBudget, account: ReceiveBudget.Account) {
        self.budget = budget
        self.account = account
    }

    mutating func decode(buffer: inout ByteBuffer) throws -> PeerWireFrame? {
        let frame = try inner.decode(buffer: &buffer)
        guard budget.hold(buffer.readableBytes, in: account) else {
            throw ReceiveBudgetExceeded(held: buffer.readableBytes, limit: budget.limit)
        }
        return frame
    }

    mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> PeerWireFrame? {
        try decode(buffer: &buffer)
    }
}
