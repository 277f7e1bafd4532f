import HTTPTypes
import NIOCore
import VelocityConfig

/// A response fixed at compile time: the body is encoded once and shared by every request that sends it.
public struct StaticResponse: Sendable {
    public var status: HTTPResponse.Status
    public var headerFields: HTTPFields
    public var body: ByteBuffer
    public var close: Bool

    init(_ config: StaticResponseConfig) {
        status = HTTPResponse.Status(code: config.status ?? 200)
        headerFields = HTTPFields()
        for (name, values) in (config.headers ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard let fieldName = HTTPField.Name(name) else { continue }
            for value in values { headerFields.append(HTTPField(name: fieldName, value: value)) }
        }
        body = ByteBuffer(string: config.body ?? "")
        close = config.close ?? false
    }

    /// A redirect; 308 (permanent, keeps the method) unless told otherwise.
    public init(redirectTo location: String, status: HTTPResponse.Status = .permanentRedirect) {
        self.status = status
        headerFields = [.location: location]
        body = ByteBuffer()
        close = false
    }

    public init(status: HTTPResponse.Status, body: String) {
        self.status = status
        headerFields = [.contentType: "text/plain; charset=utf-8"]
        self.body = ByteBuffer(string: body)
        close = false
    }
}
