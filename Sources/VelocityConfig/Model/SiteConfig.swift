/// A set of host names and the routes that serve them.
public struct SiteConfig: Decodable, Sendable, Equatable {
    /// Exact names (`example.com`) or one leading wildcard label (`*.example.com`). Absent or empty: every host
    /// no other site claims.
    public var hosts: [String]?
    /// Tried in order; the first route whose matchers all match runs its handlers.
    public var routes: [RouteConfig]?
    /// Adds `Strict-Transport-Security` to every HTTPS response of the site.
    public var hsts: HSTSConfig?
    public var tls: SiteTLSConfig?
    /// Whether HTTPS responses advertise HTTP/3 (`Alt-Svc`) when a `quic` listener exists. Default true.
    public var http3: Bool?
}

/// How the site's names get certificates.
public struct SiteTLSConfig: Decodable, Sendable, Equatable {
    /// Certify every host of the site with the internal CA (as `localhost` and `*.internal` names always are),
    /// for names only your own clients need to trust.
    public var `internal`: Bool?
}

/// HTTP Strict Transport Security (RFC 6797): browsers use only HTTPS for the site from then on.
public struct HSTSConfig: Decodable, Sendable, Equatable {
    /// Seconds browsers remember the policy; 0 tells them to forget it.
    public var maxAge: Int
    public var includeSubdomains: Bool?
    public var preload: Bool?

    enum CodingKeys: String, CodingKey {
        case maxAge = "max_age"
        case includeSubdomains = "include_subdomains"
        case preload
    }

    /// The header value, e.g. `max-age=31536000; includeSubDomains`.
    public var headerValue: String {
        var value = "max-age=\(maxAge)"
        if includeSubdomains == true { value += "; includeSubDomains" }
        if preload == true { value += "; preload" }
        return value
    }
}

/// Handlers to run when a request matches.
public struct RouteConfig: Decodable, Sendable, Equatable {
    /// Any one set matching is enough (OR); within a set every matcher must match (AND). Absent: always.
    public var match: [MatcherSet]?
    public var handle: [HandlerConfig]?
    /// Stop evaluating routes after this one, even if its handlers pass the request on.
    public var terminal: Bool?
}

/// Matchers that must all match.
public struct MatcherSet: Decodable, Sendable, Equatable {
    public var host: [String]?
    /// Exact paths, prefixes (`/api/*`), suffixes (`*.css`) or `*`.
    public var path: [String]?
    public var method: [String]?
    /// Header name → accepted values; an empty list means "present with any value".
    public var header: [String: [String]]?
    /// Query key → accepted values; an empty list means "present with any value".
    public var query: [String: [String]]?
    /// Client addresses or CIDR ranges.
    public var remoteIP: [String]?
    /// Matches when none of these sets match.
    public var not: [MatcherSet]?

    enum CodingKeys: String, CodingKey {
        case host, path, method, header, query
        case remoteIP = "remote_ip"
        case not
    }
}
