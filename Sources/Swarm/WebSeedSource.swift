import NIOCore
import PeerWire

/// One BEP 19 web seed's decisions, without I/O: the download's block requests in, HTTP
/// range GETs and the blocks of their answers out. `WebSeedLink` carries the actions out.
///
/// Requests that follow each other in the piece address space are coalesced into one job
/// (at most `maxJobBytes`); a job's range is fetched one segment at a time (an HTTP range of
/// one file; padding between files is zeros, made here). At most `maxJobs` jobs run at once.
/// The answers' bytes are cut into the requested blocks and handed back as they complete.
///
/// Redirects are followed here (at most `maxRedirects` per GET, no cycles, only to URLs
/// `mayFetch` allows). The seed is dropped, once, when it answers with another status than
/// 206 (or 200 for the whole of a file asked for whole), breaks those redirect rules, sends
/// more bytes than asked, ends an answer early, fails at the HTTP level, or sends nothing
/// for `stallTimeout` s while asked for something. A drop that may pass (the connection
/// failed or ended early, a stall, a 5xx, 408 or 429 status) says so; the download may try
/// the seed again later. Wrong bytes are the download's to find: the piece fails its hash.
public struct WebSeedSource {
    public typealias JobID = Int

    public enum Action {
        /// GET `range` of `url`; answer with `head`, `body` and `end` for `job`.
        case get(JobID, url: String, range: Range<Int64>)
        /// A requested block, whole.
        case deliver(BlockRequest, ByteBuffer)
        /// The seed is no use: stop every GET. Said once. `transient`: the reason may pass
        /// (a failed or cut connection, a stall, a server's 5xx, 408 or 429).
        case drop(String, transient: Bool)
    }

    struct Job {
        var blocks: [BlockRequest]
        var next = 0
        var segments: [WebSeedLayout.Segment]
        var segment = 0
        /// Redirects followed for the current segment, and the URLs they went through.
        var redirects = 0
        var visited: Set<String> = []
        /// Bytes of the current segment received.
        var got: Int64 = 0
        /// The first bytes of the next block, when an answer's chunk ended inside it.
        var partial = ByteBuffer()
    }

    public static let maxJobs = 4
    public static let maxRedirects = 5
    public static let maxJobBytes: Int64 = 4 << 20

    let layout: WebSeedLayout
    let pieceLength: Int64
    let stallTimeout: Double
    /// Whether a redirect's target may be fetched (http:// or https://; with `--offline`, on this host).
    let mayFetch: (String) -> Bool
    /// Requests not yet in a job, by their start in the piece address space, in arrival order.
    var pending: [Int64: BlockRequest] = [:]
    var order: [Int64] = []
    var orderHead = 0
    var jobs: [JobID: Job] = [:]
    var nextJob = 0
    var lastProgress: Double
    public private(set) var dropped: String?

    public init(layout: WebSeedLayout, pieceLength: Int, stallTimeout: Double = 20, mayFetch: @escaping (String) -> Bool = { _ in true },
                now: Double) {
        self.layout = layout
        self.mayFetch = mayFetch
        self.pieceLength = Int64(pieceLength)
        self.stallTimeout = stallTimeout
        lastProgress = now
    }

    /// Requests waiting or being fetched.
    public var busy: Bool { !jobs.isEmpty || !pending.isEmpty }

    func start(of r: BlockRequest) -> Int64 { Int64(r.piece) * pieceLength + Int64(r.begin) }

    // MARK: the download's side

    public mutating func add(_ requests: [BlockRequest], now: Double) -> [Action] {
        guard dropped == nil else { return [] }
        if jobs.isEmpty && pending.isEmpty { lastProgress = now }
        for r in requests where r.length > 0 {
            let s = start(of: r)
            if pending.updateValue(r, forKey: s) == nil { order.append(s) }
        }
        var out: [Action] = []
        fill(&out)
        return out
    }

    /// A request the download no longer wants: forgotten unless its GET is under way.
    public mutating func cancel(_ r: BlockRequest) {
        let s = start(of: r)
        if pending[s] == r { pending[s] = nil }
    }

    // MARK: HTTP's side

    /// The answer's status (and `Location`, for a redirect).
    public mutating func head(_ id: JobID, status: Int, location: String? = nil, now: Double) -> [Action] {
        guard dropped == nil, let job = jobs[id] else { return [] }
        let seg = job.segments[job.segment]
        lastProgress = now
        switch status {
        case 206: return []
        case 200 where seg.range == 0..<seg.fileLength: return []
        case 200: return drop("answered 200 without the range asked for (\(seg.url ?? ""))")
        case 300..<400: return redirect(id, job, to: location, status: status)
        default: return drop("HTTP \(status) for \(seg.url ?? "")", transient: status >= 500 || status == 408 || status == 429)
        }
    }

    /// Follows a redirect of the job's current GET as a new GET (the old answer's rest is
    /// ignored): at most `maxRedirects`, never to a URL seen before, only where `mayFetch` says.
    mutating func redirect(_ id: JobID, _ job: Job, to location: String?, status: Int) -> [Action] {
        var job = job
        let from = job.segments[job.segment].url ?? ""
        guard let location, let target = Self.resolve(location, against: from) else {
            return drop("HTTP \(status) without a usable Location (\(from))")
        }
        job.redirects += 1
        guard job.redirects <= Self.maxRedirects else { return drop("more than \(Self.maxRedirects) redirects (\(from))") }
        guard job.visited.insert(from).inserted, !job.visited.contains(target) else { return drop("redirects in a cycle (\(target))") }
        guard mayFetch(target) else { return drop("redirected to \(target), which is not used") }
        job.segments[job.segment].url = target
        jobs[id] = nil
        let next = nextJob
        nextJob += 1
        jobs[next] = job
        return [.get(next, url: target, range: job.segments[job.segment].range)]
    }

    /// `location` made absolute against `base` (an absolute URL, a path from the root, or a
    /// path relative to the base's directory); nil if it is not http:// or https://.
    static func resolve(_ location: String, against base: String) -> String? {
        let lower = location.lowercased()
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") { return location }
        let chars = Array(base)
        guard !location.contains(":"), let colon = chars.indices.first(where: { chars[$0...].starts(with: "://") }) else { return nil }
        let authorityEnd = chars[(colon + 3)...].firstIndex(of: "/") ?? chars.count
        let origin = String(chars[..<authorityEnd])
        if location.hasPrefix("//") { return String(chars[..<colon]) + ":" + location }
        if location.hasPrefix("/") { return origin + location }
        let path = chars[authorityEnd...].prefix { $0 != "?" && $0 != "#" }
        let directory = path.lastIndex(of: "/").map { String(path[...$0]) } ?? "/"
        return origin + directory + location
    }

    public mutating func body(_ id: JobID, _ bytes: ByteBuffer, now: Double) -> [Action] {
        guard dropped == nil, var job = jobs.removeValue(forKey: id) else { return [] }
        let seg = job.segments[job.segment]
        let room = seg.length - job.got
        var bytes = bytes
        var out: [Action] = []
        let excess = Int64(bytes.readableBytes) > room
        if excess { bytes = bytes.getSlice(at: bytes.readerIndex, length: Int(room))! }
        job.got += Int64(bytes.readableBytes)
        if bytes.readableBytes > 0 { lastProgress = now }
        feed(&job, &bytes, &out)
        jobs[id] = job
        if excess { out += drop("sent more than the \(seg.length) bytes asked for (\(seg.url ?? ""))") }
        return out
    }

    /// The answer ended: `error` if HTTP failed (connection, redirects, …).
    public mutating func end(_ id: JobID, error: String?, now: Double) -> [Action] {
        guard dropped == nil, var job = jobs.removeValue(forKey: id) else { return [] }
        let seg = job.segments[job.segment]
        if let error { return drop(error, transient: true) }
        guard job.got == seg.length else { return drop("answered \(job.got) of \(seg.length) bytes (\(seg.url ?? ""))", transient: true) }
        var out: [Action] = []
        job.segment += 1
        job.got = 0
        job.redirects = 0
        job.visited = []
        run(id, job, &out)
        fill(&out)
        return out
    }

    public mutating func tick(now: Double) -> [Action] {
        guard dropped == nil, !jobs.isEmpty, now - lastProgress > stallTimeout else { return [] }
        return drop("sent nothing for \(Int(stallTimeout)) s", transient: true)
    }

    // MARK: inside

    mutating func drop(_ reason: String, transient: Bool = false) -> [Action] {
        guard dropped == nil else { return [] }
        dropped = reason
        jobs.removeAll()
        pending.removeAll()
        order.removeAll()
        return [.drop(reason, transient: transient)]
    }

    /// Starts jobs while there is room, each the longest run of adjacent requests from the
    /// oldest waiting one on.
    mutating func fill(_ out: inout [Action]) {
        while jobs.count < Self.maxJobs, let first = takeOldest() {
            var blocks = [first]
            let from = start(of: first)
            var end = from + Int64(first.length)
            while end - from < Self.maxJobBytes, let r = pending.removeValue(forKey: end) {
                blocks.append(r)
                end += Int64(r.length)
            }
            let id = nextJob
            nextJob += 1
            run(id, Job(blocks: blocks, segments: layout.segments(from..<end)), &out)
        }
        if orderHead > 1024 && orderHead * 2 > order.count {
            order.removeFirst(orderHead)
            orderHead = 0
        }
    }

    mutating func takeOldest() -> BlockRequest? {
        while orderHead < order.count {
            let s = order[orderHead]
            orderHead += 1
            if let r = pending.removeValue(forKey: s) { return r }
        }
        return nil
    }

    /// Goes on with a job at its current segment: padding is filled in here, a file range is a GET.
    mutating func run(_ id: JobID, _ job: Job, _ out: inout [Action]) {
        var job = job
        while job.segment < job.segments.count {
            let seg = job.segments[job.segment]
            guard seg.url == nil else {
                jobs[id] = job
                out.append(.get(id, url: seg.url!, range: seg.range))
                return
            }
            var zeros = ByteBuffer(repeating: 0, count: Int(seg.length))
            feed(&job, &zeros, &out)
            job.segment += 1
        }
    }

    /// Cuts received bytes into the job's blocks and hands out each one whole: a block
    /// within one chunk is a slice of it, one cut across chunks is gathered in `partial`.
    func feed(_ job: inout Job, _ bytes: inout ByteBuffer, _ out: inout [Action]) {
        while job.next < job.blocks.count, bytes.readableBytes > 0 {
            let r = job.blocks[job.next]
            let length = Int(r.length)
            if job.partial.readableBytes == 0, bytes.readableBytes >= length {
                out.append(.deliver(r, bytes.readSlice(length: length)!))
                job.next += 1
                continue
            }
            var piece = bytes.readSlice(length: min(length - job.partial.readableBytes, bytes.readableBytes))!
            job.partial.writeBuffer(&piece)
            if job.partial.readableBytes == length {
                out.append(.deliver(r, job.partial))
                job.partial = ByteBuffer()
                job.next += 1
            }
        }
    }
}
