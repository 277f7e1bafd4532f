import NIOCore
import NIOHTTP1
import VelocityConfig

/// A complete admin request, body included.
public struct AdminRequest: Sendable {
    public var method: HTTPMethod
    public var uri: String
    public var headers: HTTPHeaders
    public var body: ByteBuffer
    /// Who sent it, for the revision's `who`.
    public var client: String
}

/// A complete admin response.
public struct AdminResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: ByteBuffer
    /// Runs once the response has been written (`POST /stop` stops the server only after answering).
    var afterWrite: (@Sendable () -> Void)?

    init(status: HTTPResponseStatus = .ok, json: JSONValue, revision: Int64? = nil) {
        self.status = status
        headers = ["Content-Type": "application/json"]
        if let revision { headers.add(name: "ETag", value: "\"\(revision)\"") }
        body = ByteBuffer(string: json.serialized(pretty: true) + "\n")
    }

    init(status: HTTPResponseStatus = .ok, contentType: String, body: String) {
        self.status = status
        headers = ["Content-Type": contentType]
        self.body = ByteBuffer(string: body)
    }
}

/// An admin request that failed: always answered as `{"error": ..., ...}` with the details a client can act on.
public struct AdminError: Error, Sendable {
    public var status: HTTPResponseStatus
    public var message: String
    public var details: [String: JSONValue]
    /// Headers the status calls for (`Allow` with 405, `WWW-Authenticate` with 401).
    public var headers: HTTPHeaders

    init(
        _ status: HTTPResponseStatus,
        _ message: String,
        details: [String: JSONValue] = [:],
        headers: HTTPHeaders = [:]
    ) {
        self.status = status
        self.message = message
        self.details = details
        self.headers = headers
    }

    static func methodNotAllowed(_ method: HTTPMethod, allowed: [HTTPMethod]) -> AdminError {
        let list = allowed.map(\.rawValue).joined(separator: ", ")
        return AdminError(
            .methodNotAllowed, "\(method.rawValue) is not allowed here; use \(list)",
            details: ["allow": .string(list)], headers: ["Allow": list])
    }

    static func unauthorized(_ message: String) -> AdminError {
        AdminError(.unauthorized, message, headers: ["WWW-Authenticate": "Bearer realm=\"velocity-admin\""])
    }

    init(_ error: ConfigError) {
        self.init(
            .badRequest, error.description,
            details: ["pointer": .string(error.pointer.description), "reason": .string(error.message)])
    }

    init(_ error: JSONEditError) {
        let status: HTTPResponseStatus =
            switch error.kind {
            case .notFound: .notFound
            case .conflict: .conflict
            case .invalid: .badRequest
            }
        self.init(
            status, error.description,
            details: ["pointer": .string(error.pointer.description), "reason": .string(error.message)])
    }

    init(_ error: JSONSyntaxError) {
        self.init(.badRequest, error.description, details: ["offset": .integer(Int64(error.offset))])
    }

    var response: AdminResponse {
        var body = details
        body["error"] = .string(message)
        var response = AdminResponse(status: status, json: .object(body))
        response.headers.add(contentsOf: headers)
        return response
    }
}
