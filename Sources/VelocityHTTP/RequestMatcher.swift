import HTTPTypes
import VelocityConfig

/// What a matcher reads of a request, borrowed for the duration of one routing decision.
public struct RoutingRequest {
    public var request: HTTPRequest
    /// Read once: `HTTPRequest.method` parses its text on every access.
    public let method: HTTPRequest.Method
    public var host: Substring
    public var path: Substring
    public var query: Substring
    public var remoteAddress: IPAddress?

    public init(request: HTTPRequest, remoteAddress: IPAddress?) {
        self.request = request
        method = request.method
        self.remoteAddress = remoteAddress
        host = HostName.normalize(authority: Substring(request.authority ?? ""))
        let target = Substring(request.path ?? "/")
        if let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            path = target[..<mark]
            query = target[target.utf8.index(after: mark)...]
        } else {
            path = target
            query = ""
        }
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
