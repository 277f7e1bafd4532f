import VelocityConfig

/// A string with `{placeholder}`s, split once into text and placeholders and filled per request.
struct Template: Sendable {
    private let parts: [Placeholders.Part]

    /// Validation has checked the template, so it always splits.
    init(_ text: String) {
        parts = Placeholders.parts(of: text) ?? [.text(text)]
    }

    func render(_ request: RoutingRequest) -> String {
        var result = ""
        for part in parts {
            switch part {
            case .text(let text): result += text
            case .placeholder(let name): Self.append(name, of: request, to: &result)
            }
        }
        return result
    }

    private static func append(_ name: String, of request: RoutingRequest, to result: inout String) {
        switch name {
        case "scheme": result += request.request.scheme ?? "http"
        case "host": result += request.host.contains(":") ? "[\(request.host)]" : request.host
        case "uri": result += request.request.path ?? "/"
        case "path": result += request.path
        case "query": result += request.query
        case "method": result += request.method.rawValue
        case "remote_ip": result += request.remoteAddress?.description ?? ""
        default: break
        }
    }
}
