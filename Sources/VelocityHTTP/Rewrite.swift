import VelocityConfig

/// A compiled `rewrite` handler: changes the path (and query) the later matchers and handlers see.
struct Rewrite: Sendable {
    private let stripPrefix: Substring?
    private let uri: Template?
    private let replacesQuery: Bool

    init(_ config: RewriteConfig) {
        // A trailing slash in the prefix would leave the remainder without its leading one.
        stripPrefix = config.stripPrefix.map { prefix in
            var trimmed = Substring(prefix)
            while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
            return trimmed
        }
        uri = config.uri.map(Template.init)
        replacesQuery = config.uri?.contains("?") ?? false
    }

    func apply(to request: inout RoutingRequest) {
        if let stripPrefix, let rest = Self.strip(stripPrefix, from: request.path) {
            request.setTarget(path: rest.isEmpty ? "/" : rest, query: request.query)
        }
        if let uri {
            var target = uri.render(request)
            if !target.hasPrefix("/") { target = "/" + target }
            if replacesQuery {
                request.setTarget(target)
            } else {
                request.setTarget(path: Substring(target), query: request.query)
            }
        }
    }

    /// The path after the prefix, when the prefix ends at a segment boundary.
    private static func strip(_ prefix: Substring, from path: Substring) -> Substring? {
        if prefix == "/" { return path }
        guard path.hasPrefix(prefix) else { return nil }
        let rest = path.dropFirst(prefix.count)
        return rest.isEmpty || rest.hasPrefix("/") ? rest : nil
    }
}
