import HTTPTypes
import VelocityConfig

/// A request as routing sees it: parsed once, then changed only by the handlers that rewrite it.
public struct RoutingRequest: Sendable {
    public var request: HTTPRequest
    /// Read once: `HTTPRequest.method` parses its text on every access.
    public let method: HTTPRequest.Method
    public var host: Substring
    public var path: Substring
    public var query: Substring
    public var remoteAddress: IPAddress?
    /// The target as the client sent it, before any rewrite: what redirects back to the client are built from.
    public let originalTarget: String

    public init(request: HTTPRequest, remoteAddress: IPAddress?) {
        self.request = request
        originalTarget = request.path ?? "/"
        method = request.method
        self.remoteAddress = remoteAddress
        host = HostName.normalize(authority: Substring(request.authority ?? ""))
        (path, query) = Self.split(Substring(request.path ?? "/"))
    }

    /// Replaces the request target (path and query), as a rewrite does.
    public mutating func setTarget(_ target: String) {
        request.path = target
        (path, query) = Self.split(Substring(target))
    }

    mutating func setTarget(path: Substring, query: Substring) {
        setTarget(query.isEmpty ? String(path) : "\(path)?\(query)")
    }

    private static func split(_ target: Substring) -> (path: Substring, query: Substring) {
        guard let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return (target, "") }
        return (target[..<mark], target[target.utf8.index(after: mark)...])
    }
}

/// A compiled matcher set: every present matcher must match. A class, so that trying it on a request costs
/// one reference count rather than one per stored array.
final class RequestMatcher: Sendable {
    private let hosts: SiteTable?
    private let paths: [PathPattern]?
    private let methods: [HTTPRequest.Method]?
    private let headers: [(HTTPField.Name, [String])]
    private let query: [(String, [String])]
    private let remoteRanges: [IPRange]?
    private let negated: [RequestMatcher]

    init(_ set: MatcherSet) {
        // An empty list matches nothing, like every other matcher (a table of no sites has no fallback).
        hosts = set.host.map { $0.isEmpty ? SiteTable(hosts: []) : SiteTable(hosts: [$0]) }
        paths = set.path.map { $0.compactMap(PathPattern.init) }
        methods = set.method.map { $0.compactMap { HTTPRequest.Method($0) } }
        headers = (set.header ?? [:]).sorted { $0.key < $1.key }.compactMap { name, values in
            HTTPField.Name(name).map { ($0, values) }
        }
        query = (set.query ?? [:]).sorted { $0.key < $1.key }
        remoteRanges = set.remoteIP.map { $0.compactMap(IPRange.init) }
        negated = (set.not ?? []).map(RequestMatcher.init)
    }

    func matches(_ request: RoutingRequest) -> Bool {
        if let hosts, hosts.lookup(request.host) == nil { return false }
        if let paths, !paths.contains(where: { $0.matches(request.path) }) { return false }
        if let methods, !methods.contains(request.method) { return false }
        for (name, accepted) in headers {
            let values = request.request.headerFields[values: name]
            if values.isEmpty { return false }
            if !accepted.isEmpty, !values.contains(where: accepted.contains) { return false }
        }
        for (key, accepted) in query {
            let values = Self.queryValues(key, in: request.query)
            if values.isEmpty { return false }
            if !accepted.isEmpty, !values.contains(where: { accepted.contains(String($0)) }) { return false }
        }
        if let remoteRanges {
            guard let address = request.remoteAddress, remoteRanges.contains(where: { $0.contains(address) }) else {
                return false
            }
        }
        if negated.contains(where: { $0.matches(request) }) { return false }
        return true
    }

    private static func queryValues(_ key: String, in query: Substring) -> [Substring] {
        query.split(separator: "&").compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return parts[0] == key ? (parts.count == 2 ? parts[1] : "") : nil
        }
    }
}
