/// One handler in a route, chosen by its `handler` member.
public enum HandlerConfig: Decodable, Sendable, Equatable {
    case staticResponse(StaticResponseConfig)
    case redirect(RedirectConfig)
    case headers(HeadersConfig)
    case fileServer(FileServerConfig)
    case rewrite(RewriteConfig)
    case encode(EncodeConfig)
    case basicAuth(BasicAuthConfig)
    case subroute(SubrouteConfig)
    case reverseProxy(ReverseProxyConfig)

    /// The handler names this build knows, as written in a config.
    public static let names = [
        "static_response", "redirect", "headers", "file_server", "rewrite", "encode", "basic_auth", "subroute",
        "reverse_proxy",
    ]

    enum CodingKeys: String, CodingKey {
        case handler
    }

    public init(from decoder: any Decoder) throws {
        let name = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .handler)
        switch name {
        case "static_response":
            self = .staticResponse(try StaticResponseConfig(from: decoder))
        case "redirect":
            self = .redirect(try RedirectConfig(from: decoder))
        case "headers":
            self = .headers(try HeadersConfig(from: decoder))
        case "file_server":
            self = .fileServer(try FileServerConfig(from: decoder))
        case "rewrite":
            self = .rewrite(try RewriteConfig(from: decoder))
        case "encode":
            self = .encode(try EncodeConfig(from: decoder))
        case "basic_auth":
            self = .basicAuth(try BasicAuthConfig(from: decoder))
        case "subroute":
            self = .subroute(try SubrouteConfig(from: decoder))
        case "reverse_proxy":
            self = .reverseProxy(try ReverseProxyConfig(from: decoder))
        default:
            throw ConfigError(
                at: JSONPointer(codingPath: decoder.codingPath + [CodingKeys.handler]),
                "unknown handler \"\(name)\"; known handlers: \(Self.names.joined(separator: ", "))")
        }
    }
}

/// Answers with a fixed status, headers and body.
public struct StaticResponseConfig: Decodable, Sendable, Equatable {
    /// Default 200.
    public var status: Int?
    public var headers: [String: [String]]?
    public var body: String?
    /// Close the connection after answering.
    public var close: Bool?

    public init(status: Int? = nil, headers: [String: [String]]? = nil, body: String? = nil, close: Bool? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.close = close
    }
}

/// Answers with a redirect to a URL made from the request: `{scheme}`, `{host}`, `{uri}` (path and query),
/// `{path}`, `{query}`, `{method}` and `{remote_ip}` are replaced.
public struct RedirectConfig: Decodable, Sendable, Equatable {
    public var to: String
    /// 301, 302, 303, 307 or 308 (the default: permanent, keeps the method).
    public var status: Int?
}

/// Changes request headers (seen by later matchers and handlers) and response headers (of whatever answers
/// the request after this handler).
public struct HeadersConfig: Decodable, Sendable, Equatable {
    public var request: HeaderOperations?
    public var response: HeaderOperations?
}

/// Header edits, applied in the order delete, set, add.
public struct HeaderOperations: Decodable, Sendable, Equatable {
    /// Replace every value of these headers.
    public var set: [String: [String]]?
    /// Append these values.
    public var add: [String: [String]]?
    /// Remove these headers.
    public var delete: [String]?
}

/// Routes tried in order within the enclosing route, as a site's routes are; a subroute that answers nothing
/// passes the request on to the enclosing route's next handler.
public struct SubrouteConfig: Decodable, Sendable, Equatable {
    public var routes: [RouteConfig]?
}
