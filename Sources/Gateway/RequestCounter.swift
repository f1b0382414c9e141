import Locking
import CoreMetrics
import Hummingbird

/// Counts the gateway's answers by status, as `webseed_http_requests_total{status="200"}`,
/// with the factory it is given (the engine's registry, not the process-wide one). A request
/// that throws counts as the status Hummingbird answers it with.
final class RequestCounter<Context: RequestContext>: RouterMiddleware, Sendable {
    static var name: String { "webseed_http_requests_total" }

    private let factory: (any MetricsFactory)?
    private let counters = Locked<[Int: Counter]>([:])

    /// nil: nothing is counted.
    init(factory: (any MetricsFactory)?) {
        self.factory = factory
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            count(response.status)
            return response
        } catch let error as any HTTPResponseError {
            count(error.status)
            throw error
        } catch {
            count(.internalServerError)
            throw error
        }
    }

    private func count(_ status: HTTPResponse.Status) {
        guard let factory else { return }
        counters.withLock { counters in
            let counter = counters[status.code] ?? Counter(label: Self.name, dimensions: [("status", String(status.code))], factory: factory)
            counters[status.code] = counter
            return counter
        }.increment()
    }
}
