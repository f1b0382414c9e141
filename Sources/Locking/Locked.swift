#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// webseed's locks are pthread mutexes rather than `Synchronization.Mutex`: ThreadSanitizer
// cannot see the ordering a contended `Mutex` gives on Linux (its slow path waits in the
// kernel, on a priority-inheriting futex), so two threads taking turns through one looked
// like a data race and failed the sanitizer run. pthread mutexes are intercepted by every
// sanitizer, so a report is always a real race. Uncontended, both cost one atomic operation
// to take and one to give back.

/// A value guarded by a lock, with `Synchronization.Mutex`'s `withLock`.
public final class Locked<Value>: @unchecked Sendable {
    @usableFromInline let lock = Lock()
    @usableFromInline var value: Value

    public init(_ initialValue: sending Value) {
        value = initialValue
    }

    /// Runs `body` with the value, holding the lock; `body` must not take this lock again.
    @inlinable
    public func withLock<Result: ~Copyable, E: Error>(_ body: (inout sending Value) throws(E) -> sending Result) throws(E) -> sending Result {
        pthread_mutex_lock(lock.mutex)
        defer { pthread_mutex_unlock(lock.mutex) }
        return try body(&value)
    }
}

/// A lock guarding no value of its own (for state the caller keeps, or to run one thing at a time).
public final class Lock: @unchecked Sendable {
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` holding the lock; `body` must not take this lock again.
    @inlinable
    public func withLock<Result: ~Copyable, E: Error>(_ body: () throws(E) -> Result) throws(E) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
