import HTTPTypes
import VelocityConfig

/// A `redirect` handler: its target split once into text and placeholders, filled per request.
struct RedirectTemplate: Sendable {
    private let parts: [Placeholders.Part]
    private let status: HTTPResponse.Status

    init(_ config: RedirectConfig) {
        // Validation has checked the template, so it always splits.
        parts = Placeholders.parts(of: config.to) ?? [.text(config.to)]
        status = HTTPResponse.Status(code: config.status ?? 308)
    }

    func response(for request: RoutingRequest) -> StaticResponse {
        var location = ""
        for part in parts {
            switch part {
            case .text(let text): location += text
            case .placeholder(let name): location += Self.value(name, of: request)
            }
        }
        return StaticResponse(redirectTo: location, status: status)
    }

    private static func value(_ name: String, of request: RoutingRequest) -> String {
        switch name {
        case "scheme": request.request.scheme ?? "http"
        case "host": request.host.contains(":") ? "[\(request.host)]" : String(request.host)
        case "uri": request.request.path ?? "/"
        case "path": String(request.path)
        case "query": String(request.query)
        case "method": request.method.rawValue
        case "remote_ip": request.remoteAddress?.description ?? ""
        default: ""
        }
    }
}
