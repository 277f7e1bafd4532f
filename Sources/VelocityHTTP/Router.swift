import VelocityConfig

/// The compiled form of a config's sites and routes. Built once per config change and shared read-only by
/// every request that arrives while it is current.
public struct Router: Sendable {
    /// What the data plane does with a request.
    public enum Outcome: Sendable {
        case respond(StaticResponse)
    }

    private let siteTable: SiteTable
    private let sites: [[Route]]

    private static let notFound = StaticResponse(status: .notFound, body: "404 Not Found: no route for this request\n")

    public init(config: VelocityConfig) {
        let siteConfigs = config.sites ?? []
        siteTable = SiteTable(hosts: siteConfigs.map { $0.hosts ?? [] })
        sites = siteConfigs.map { site in (site.routes ?? []).map { Route($0, hsts: site.hsts) } }
    }

    /// Runs the handlers of every matching route in order until one answers. `headers` handlers change the
    /// request for the matchers and handlers after them, and the response of whichever handler answers.
    public func route(_ request: RoutingRequest) -> Outcome {
        guard let site = siteTable.lookup(request.host) else { return .respond(Self.notFound) }
        let secure = request.request.scheme == "https"
        var request = request
        var responseEdits: [HeaderEdits] = []
        for route in sites[site] where route.matches(request) {
            for handler in route.handlers {
                switch handler {
                case .respond(let plain, let overHTTPS):
                    return .respond(Self.edited(secure ? overHTTPS : plain, responseEdits))
                case .redirect(let template, let hsts):
                    var response = template.response(for: request)
                    if secure, let hsts { response.headerFields[.strictTransportSecurity] = hsts }
                    return .respond(Self.edited(response, responseEdits))
                case .headers(let requestEdits, let edits):
                    requestEdits?.apply(to: &request.request.headerFields)
                    if let edits { responseEdits.append(edits) }
                }
            }
            if route.terminal { break }
        }
        return .respond(Self.edited(Self.notFound, responseEdits))
    }

    /// Applies response edits; a response no edit touches is passed on as compiled, without a copy.
    private static func edited(_ response: StaticResponse, _ edits: [HeaderEdits]) -> StaticResponse {
        guard !edits.isEmpty else { return response }
        var response = response
        for edit in edits { edit.apply(to: &response.headerFields) }
        return response
    }
}

/// A handler compiled for the request path.
private enum Handler: Sendable {
    /// The response as compiled, and the same with the site's `Strict-Transport-Security` for HTTPS (which
    /// only means something there); built once so that no request adds a header.
    case respond(StaticResponse, overHTTPS: StaticResponse)
    case redirect(RedirectTemplate, hsts: String?)
    case headers(request: HeaderEdits?, response: HeaderEdits?)
}

/// A class, so that iterating a site's routes costs one reference count per route.
private final class Route: Sendable {
    let matchers: [RequestMatcher]
    let handlers: [Handler]
    let terminal: Bool

    init(_ config: RouteConfig, hsts: HSTSConfig?) {
        matchers = (config.match ?? []).map(RequestMatcher.init)
        handlers = (config.handle ?? []).map { handler in
            switch handler {
            case .staticResponse(let config):
                let response = StaticResponse(config)
                var overHTTPS = response
                if let hsts { overHTTPS.headerFields[.strictTransportSecurity] = hsts.headerValue }
                return .respond(response, overHTTPS: overHTTPS)
            case .redirect(let config):
                return .redirect(RedirectTemplate(config), hsts: hsts?.headerValue)
            case .headers(let config):
                return .headers(
                    request: config.request.map(HeaderEdits.init), response: config.response.map(HeaderEdits.init))
            }
        }
        terminal = config.terminal ?? false
    }

    func matches(_ request: RoutingRequest) -> Bool {
        matchers.isEmpty || matchers.contains { $0.matches(request) }
    }
}
