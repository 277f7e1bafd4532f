import HTTPTypes
import VelocityConfig

/// A `redirect` handler: its target template and status.
struct RedirectTemplate: Sendable {
    private let target: Template
    private let status: HTTPResponse.Status

    init(_ config: RedirectConfig) {
        target = Template(config.to)
        status = HTTPResponse.Status(code: config.status ?? 308)
    }

    func response(for request: RoutingRequest) -> StaticResponse {
        StaticResponse(redirectTo: target.render(request), status: status)
    }
}
