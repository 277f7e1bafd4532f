import HTTPTypes
import VelocityConfig
import VelocityHTTP
import VelocityTLS

/// What plain HTTP answers before routing: ACME HTTP-01 challenges for managed names; 503 "certificate
/// pending" for a managed name whose certificate is still being obtained (its HTTPS handshakes fail with
/// `unrecognized_name` meanwhile, and the site is not served unencrypted instead); and the automatic
/// HTTP→HTTPS redirect, 308 to the same URI, for a name that has a trusted certificate (not merely the default).
struct HTTPSRedirect: Sendable {
    /// The port of the first HTTPS listener; nil when there is none.
    private let port: Int?
    private let certificates: CertificateTable

    private static let challengePrefix = "/.well-known/acme-challenge/"
    /// Seconds a client is asked to wait before trying a pending name again.
    static let pendingRetrySeconds = 30

    init(listeners: [ListenerConfig], certificates: CertificateTable) {
        port =
            listeners.lazy.filter { $0.protocol == .https }.compactMap { listener -> Int? in
                guard case .inet(_, let port)? = ListenAddress(listener.address) else { return nil }
                return port
            }.first
        self.certificates = certificates
    }

    func response(for request: RoutingRequest) -> StaticResponse? {
        guard request.request.scheme == "http", !request.host.isEmpty else { return nil }
        if request.path.hasPrefix(Self.challengePrefix) {
            let token = request.path.dropFirst(Self.challengePrefix.count)
            guard let answer = certificates.acmeHTTPAnswer(host: request.host, token: token) else { return nil }
            var response = StaticResponse(status: .ok, body: answer)
            response.headerFields[.contentType] = "application/octet-stream"
            return response
        }
        if certificates.pendingNames.contains(String(request.host)) {
            var response = StaticResponse(
                status: .serviceUnavailable,
                body: "certificate pending: Velocity is obtaining a certificate for \(request.host); "
                    + "try https://\(request.host) again shortly\n")
            response.headerFields[.retryAfter] = String(Self.pendingRetrySeconds)
            return response
        }
        guard let port, certificates.covers(request.host) else { return nil }
        let host = request.host.contains(":") ? "[\(request.host)]" : String(request.host)
        let authority = port == 443 ? host : "\(host):\(port)"
        return StaticResponse(redirectTo: "https://\(authority)\(request.request.path ?? "/")")
    }
}
