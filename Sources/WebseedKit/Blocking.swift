import Dispatch

/// Runs blocking work (hashing a site, talking to a router) on a Dispatch thread and waits
/// for it without holding a cooperative thread: the signal handling and the other services
/// keep running meanwhile.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (done: CheckedContinuation<T, any Error>) in
        DispatchQueue.global().async {
            done.resume(with: Result { try body() })
        }
    }
}

func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { (done: CheckedContinuation<T, Never>) in
        DispatchQueue.global().async {
            done.resume(returning: body())
        }
    }
}
