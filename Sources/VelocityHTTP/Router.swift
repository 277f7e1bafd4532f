import HTTPTypes
import VelocityConfig

/// The compiled form of a config's sites and routes. Built once per config change and shared read-only by
/// every request that arrives while it is current.
public struct Router: Sendable {
    /// What the data plane does next with a request.
    public enum Step: Sendable {
        /// Send this response, decorated already (header edits, HSTS); `encode` may still apply.
        case respond(StaticResponse)
        /// Look the request up with a file server, off the event loop (it touches the disk). If the file is
        /// missing and the server passes such requests on, continue with `next`.
        case serveFile(FileServer)
        /// Verify the credentials off the event loop (it costs milliseconds by design), then `next` on success
        /// or answer the check's challenge.
        case verify(PasswordCheck)
        /// Forward the request to an upstream of this proxy and stream its answer back.
        case proxy(ReverseProxy)
    }

    private let siteTable: SiteTable
    private let sites: [Site]

    static let notFound = StaticResponse(status: .notFound, body: "404 Not Found: no route for this request\n")

    /// `upstreams` gives the data plane's object for each upstream address a `reverse_proxy` names, so that
    /// connections and health outlive the router.
    public init(config: VelocityConfig, upstreams: (UpstreamSpec) -> any ProxyUpstream = DetachedUpstream.init(spec:)) {
        let siteConfigs = config.sites ?? []
        siteTable = SiteTable(hosts: siteConfigs.map { $0.hosts ?? [] })
        let altSvc = Self.altSvc(config)
        sites = siteConfigs.map { site in
            var httpsFields = HTTPFields()
            if let hsts = site.hsts { httpsFields[.strictTransportSecurity] = hsts.headerValue }
            if let altSvc, site.http3 ?? true { httpsFields[Self.altSvcName] = altSvc }
            return Site(
                routes: (site.routes ?? []).map { Route($0, httpsFields: httpsFields, upstreams: upstreams) },
                httpsFields: httpsFields.isEmpty ? nil : httpsFields)
        }
    }

    private static let altSvcName = HTTPField.Name("Alt-Svc")!

    /// How long clients may remember that HTTP/3 is offered: a day, as browsers commonly cap it.
    static let altSvcMaxAge = 86_400

    /// The `Alt-Svc` value that points clients at HTTP/3: the port of the first `quic` listener (RFC 7838,
    /// RFC 9114 §3.1.1), or nil when there is none.
    private static func altSvc(_ config: VelocityConfig) -> String? {
        for listener in config.listeners ?? [] where listener.protocol == .quic {
            guard case .inet(_, let port)? = ListenAddress(listener.address) else { continue }
            return "h3=\":\(port)\"; ma=\(altSvcMaxAge)"
        }
        return nil
    }

    /// Where routing of a request begins: its site's first route.
    public func start(_ request: RoutingRequest) -> RouteCursor {
        guard let index = siteTable.lookup(request.host) else { return RouteCursor(request: request, routes: []) }
        var cursor = RouteCursor(request: request, routes: sites[index].routes)
        if request.request.scheme == "https" { cursor.decorations.httpsFields = sites[index].httpsFields }
        return cursor
    }

    /// Runs handlers from the cursor on until one answers or needs work done off the event loop. `headers`,
    /// `rewrite`, `encode` and granted `basic_auth` change the request or the response to come and pass on.
    public func next(_ cursor: inout RouteCursor) -> Step {
        while let handler = cursor.advance() {
            switch handler {
            case .respond(let plain, let overHTTPS):
                return .respond(cursor.decorations.decorated(cursor.decorations.httpsFields == nil ? plain : overHTTPS))
            case .redirect(let template):
                var response = template.response(for: cursor.request)
                cursor.decorations.decorate(&response.headerFields)
                return .respond(response)
            case .headers(let requestEdits, let responseEdits):
                requestEdits?.apply(to: &cursor.request.request.headerFields)
                if let responseEdits { cursor.decorations.headerEdits.append(responseEdits) }
            case .rewrite(let rewrite):
                rewrite.apply(to: &cursor.request)
            case .encode(let rule):
                cursor.decorations.encoding = rule
            case .basicAuth(let auth):
                switch auth.check(cursor.request.request.headerFields[.authorization]) {
                case .granted: continue
                case .denied: return .respond(cursor.decorations.decorated(auth.challenge))
                case .verify(let check): return .verify(check)
                }
            case .fileServer(let server):
                return .serveFile(server)
            case .subroute(let routes):
                cursor.enter(routes)
            case .reverseProxy(let proxy):
                return .proxy(proxy)
            }
        }
        return .respond(cursor.decorations.decorated(Self.notFound))
    }
}

/// A site's compiled routes, and the fields its HTTPS responses carry (`Strict-Transport-Security`,
/// `Alt-Svc`), nil when there are none.
private struct Site: Sendable {
    let routes: [Route]
    let httpsFields: HTTPFields?
}

/// A handler compiled for the request path.
enum Handler: Sendable {
    /// The response as compiled, and the same with the site's HTTPS fields (`Strict-Transport-Security` and
    /// `Alt-Svc` only mean something there); built once so that no request adds a header.
    case respond(StaticResponse, overHTTPS: StaticResponse)
    case redirect(RedirectTemplate)
    case headers(request: HeaderEdits?, response: HeaderEdits?)
    case rewrite(Rewrite)
    case encode(EncodeRule)
    case basicAuth(BasicAuth)
    case fileServer(FileServer)
    case subroute([Route])
    case reverseProxy(ReverseProxy)
}

/// A class, so that iterating a site's routes costs one reference count per route.
final class Route: Sendable {
    let matchers: [RequestMatcher]
    let handlers: [Handler]
    let terminal: Bool

    init(_ config: RouteConfig, httpsFields: HTTPFields, upstreams: (UpstreamSpec) -> any ProxyUpstream) {
        matchers = (config.match ?? []).map(RequestMatcher.init)
        handlers = (config.handle ?? []).map { handler in
            switch handler {
            case .staticResponse(let config):
                let response = StaticResponse(config)
                var overHTTPS = response
                for field in httpsFields { overHTTPS.headerFields[field.name] = field.value }
                return .respond(response, overHTTPS: overHTTPS)
            case .redirect(let config):
                return .redirect(RedirectTemplate(config))
            case .headers(let config):
                return .headers(
                    request: config.request.map(HeaderEdits.init), response: config.response.map(HeaderEdits.init))
            case .rewrite(let config):
                return .rewrite(Rewrite(config))
            case .encode(let config):
                return .encode(EncodeRule(config))
            case .basicAuth(let config):
                return .basicAuth(BasicAuth(config))
            case .fileServer(let config):
                return .fileServer(FileServer(config))
            case .subroute(let config):
                return .subroute(
                    (config.routes ?? []).map { Route($0, httpsFields: httpsFields, upstreams: upstreams) })
            case .reverseProxy(let config):
                return .reverseProxy(ReverseProxy(config, upstreams: upstreams))
            }
        }
        terminal = config.terminal ?? false
    }

    func matches(_ request: RoutingRequest) -> Bool {
        matchers.isEmpty || matchers.contains { $0.matches(request) }
    }
}
