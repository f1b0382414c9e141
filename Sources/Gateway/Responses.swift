import Hummingbird
import NIOCore

/// The gateway's own small responses. Every one says what it is (`nosniff`), so a browser
/// never guesses a type for text a request could have put in it.
extension GatewayResponder {
    func redirect(_ location: String) -> Response {
        var h = HTTPFields()
        h[.location] = location
        h[.contentType] = "text/plain; charset=utf-8"
        h[.xContentTypeOptions] = "nosniff"
        return Response(status: .movedPermanently, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: "moved to \(location)\n")))
    }

    func plain(_ status: HTTPResponse.Status, _ text: String) -> Response {
        var h = HTTPFields()
        h[.contentType] = "text/plain; charset=utf-8"
        h[.xContentTypeOptions] = "nosniff"
        h[.cacheControl] = "no-store"
        return Response(status: status, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: text + "\n")))
    }

    func html(_ status: HTTPResponse.Status, _ text: String, request: Request, cache: String) -> Response {
        self.text(status, text, type: "text/html; charset=utf-8", cache: cache, request: request)
    }

    func json(_ status: HTTPResponse.Status, _ text: String, request: Request) -> Response {
        self.text(status, text, type: "application/json; charset=utf-8", request: request)
    }

    /// A whole body with its length (HEAD: the same head, no body).
    func text(_ status: HTTPResponse.Status, _ text: String, type: String, cache: String = "no-store", request: Request) -> Response {
        var h = HTTPFields()
        h[.contentType] = type
        h[.xContentTypeOptions] = "nosniff"
        h[.cacheControl] = cache
        let buffer = ByteBuffer(string: text)
        h[.contentLength] = String(buffer.readableBytes)
        return Response(status: status, headers: h, body: request.method == .head ? ResponseBody() : ResponseBody(byteBuffer: buffer))
    }
}
