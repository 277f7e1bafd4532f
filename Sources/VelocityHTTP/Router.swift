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

    public func route(_ request: RoutingRequest) -> Outcome {
        guard let site = siteTable.lookup(request.host) else { return .respond(Self.notFound) }
        let secure = request.request.scheme == "https"
        for route in sites[site] where route.matches(request) {
            if let outcome = (secure ? route.secureHandlers : route.handlers).first { return outcome }
            if route.terminal { break }
        }
        return .respond(Self.notFound)
    }
}

private struct Route: Sendable {
    var matchers: [RequestMatcher]
    var handlers: [Router.Outcome]
    /// The same handlers for HTTPS requests: with the site's `Strict-Transport-Security` header, which only
    /// means something over HTTPS. Compiled once, so no request adds a header.
    var secureHandlers: [Router.Outcome]
    var terminal: Bool

    init(_ config: RouteConfig, hsts: HSTSConfig?) {
        matchers = (config.match ?? []).map(RequestMatcher.init)
        handlers = (config.handle ?? []).map { handler in
            switch handler {
            case .staticResponse(let response): .respond(StaticResponse(response))
            }
        }
        secureHandlers = handlers.map { outcome in
            guard let hsts else { return outcome }
            switch outcome {
            case .respond(var response):
                response.headerFields[.strictTransportSecurity] = hsts.headerValue
                return .respond(response)
            }
        }
        terminal = config.terminal ?? false
    }

    func matches(_ request: RoutingRequest) -> Bool {
        matchers.isEmpty || matchers.contains { $0.matches(request) }
    }
}
