import Foundation
import HTTPTypes
import NIOHTTP1
import VelocityConfig
import VelocityHTTP

/// The heads a proxied exchange sends on: towards the upstream, and back to the client.
enum ProxyHeaders {
    /// Connection-level headers (RFC 9110 §7.6.1), which describe one hop and are never forwarded.
    private static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    ]

    /// A request to switch protocols (a WebSocket handshake), whose Upgrade and Connection headers are passed
    /// on rather than dropped as hop-by-hop: an HTTP/1.1 client's, or one an ``ExtendedConnectHandler`` made of
    /// an HTTP/2 or HTTP/3 extended CONNECT. (Those protocols refuse Upgrade and Connection from clients, so
    /// only that handler puts them on their heads.)
    static func upgradeProtocol(_ head: HTTPRequestHead) -> String? {
        guard head.version == .http1_1 || head.version.major >= 2, let upgrade = head.headers.first(name: "upgrade"),
            head.headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "upgrade" })
        else { return nil }
        return upgrade
    }

    /// Whether the upstream's answer to a WebSocket handshake made for an extended CONNECT may go back to the
    /// client. That client takes any 2xx for an open tunnel and has no Sec-WebSocket-Accept to check, so a 2xx
    /// must be a 101 that accepts the key sent; refusals pass.
    static func answersExtendedConnect(_ response: HTTPResponseHead, to request: HTTPRequestHead) -> Bool {
        switch response.status.code {
        case 101:
            guard let key = request.headers.first(name: "sec-websocket-key") else { return false }
            return response.headers.first(name: "sec-websocket-accept") == WebSocketHandshake.accept(forKey: key)
        case 200..<300:
            return false
        default:
            return true
        }
    }

    /// `Expect: 100-continue` is answered by Velocity itself when it starts forwarding, so the upstream never
    /// sees it (its 100 would have nowhere to go).
    static func expectsContinue(_ head: HTTPRequestHead) -> Bool {
        head.version == .http1_1 && head.headers[canonicalForm: "expect"].contains { $0.lowercased() == "100-continue" }
    }

    /// The request head for the upstream: routing's view of the request (after rewrites and header edits),
    /// without hop-by-hop headers, with forwarding headers, the chosen Host and the proxy's own edits.
    static func upstreamHead(
        _ request: RoutingRequest, version: HTTPVersion, upgrade: String?, proxy: ReverseProxy, upstream: Upstream
    ) -> HTTPRequestHead {
        var fields = request.request.headerFields
        removeHopByHop(&fields)
        fields[.expect] = nil
        if let upgrade {
            fields[.upgrade] = upgrade
            fields[.connection] = "Upgrade"
        }
        let trusted = proxy.trusts(request.remoteAddress)
        let client = request.remoteAddress?.description ?? ""
        if trusted, let forwarded = fields[.xForwardedFor] {
            fields[.xForwardedFor] = forwarded + ", " + client
        } else {
            fields[.xForwardedFor] = client
        }
        if !trusted || fields[.xForwardedProto] == nil { fields[.xForwardedProto] = request.request.scheme ?? "http" }
        if !trusted || fields[.xForwardedHost] == nil { fields[.xForwardedHost] = request.request.authority ?? "" }
        fields.append(HTTPField(name: .via, value: via(version)))
        switch proxy.hostHeader {
        case .passThrough: break
        case .fixed(let host): fields[.hostField] = host
        case .upstream: fields[.hostField] = upstream.key
        }
        if fields[.hostField] == nil, let authority = request.request.authority { fields[.hostField] = authority }
        proxy.requestEdits?.apply(to: &fields)
        return HTTPRequestHead(
            version: .http1_1, method: HTTPMethod(rawValue: request.method.rawValue),
            uri: request.request.path ?? "/", headers: HTTPHeaders(fields))
    }

    /// The upstream's response head as the client gets it; a 101 keeps its Upgrade.
    static func clientFields(_ response: HTTPResponseHead, version: HTTPVersion, proxy: ReverseProxy) -> HTTPFields {
        var fields = HTTPFields()
        fields.reserveCapacity(response.headers.count + 1)
        for (name, value) in response.headers {
            guard let name = HTTPField.Name(name) else { continue }
            fields.append(HTTPField(name: name, value: value))
        }
        let upgrade = response.status == .switchingProtocols ? fields[.upgrade] : nil
        removeHopByHop(&fields)
        if let upgrade {
            fields[.upgrade] = upgrade
            fields[.connection] = "Upgrade"
        }
        fields.append(HTTPField(name: .via, value: via(version)))
        proxy.responseEdits?.apply(to: &fields)
        return fields
    }

    /// Fields a trailer section may not carry (RFC 9110 §6.5.1): framing, routing, authentication and how the
    /// content is to be read, besides hop-by-hop fields.
    private static let notInTrailers: Set<String> = hopByHop.union([
        "content-length", "content-encoding", "content-type", "content-range", "host", "authorization",
        "proxy-authorization", "www-authenticate", "proxy-authenticate", "set-cookie", "cookie", "expect",
        "max-forwards", "cache-control", "age", "expires", "date", "location", "retry-after", "vary",
    ])

    /// The trailer fields to pass on, in either direction; nil when none remain.
    static func trailers(_ fields: HTTPHeaders?) -> HTTPHeaders? {
        guard let fields else { return nil }
        var kept = HTTPHeaders()
        for (name, value) in fields where !notInTrailers.contains(name.lowercased()) {
            kept.add(name: name, value: value)
        }
        return kept.isEmpty ? nil : kept
    }

    private static func via(_ version: HTTPVersion) -> String {
        version.major == 2 ? "2.0 velocity" : "\(version.major).\(version.minor) velocity"
    }

    private static func removeHopByHop(_ fields: inout HTTPFields) {
        let named = fields[values: .connection].flatMap { $0.split(separator: ",") }.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }
        for name in hopByHop.union(named) {
            if let field = HTTPField.Name(name) { fields[field] = nil }
        }
    }
}

extension HTTPField.Name {
    /// HTTP/1's Host, which HTTPTypes keeps out of its own names (it models it as the authority).
    static let hostField = HTTPField.Name("Host")!
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
    static let xForwardedProto = HTTPField.Name("X-Forwarded-Proto")!
    static let xForwardedHost = HTTPField.Name("X-Forwarded-Host")!
}
