import HTTPTypes
import VelocityConfig
import VelocityHTTP
import VelocityTLS

/// The automatic HTTP→HTTPS redirect: a plain-HTTP request for a name that has a trusted certificate (not
/// merely the default) gets 308 to the same URI over HTTPS, except ACME HTTP-01 challenges, which must stay
/// on plain HTTP.
struct HTTPSRedirect: Sendable {
    /// The port of the first HTTPS listener; nil when there is none.
    private let port: Int?
    private let certificates: CertificateTable

    private static let challengePrefix = "/.well-known/acme-challenge/"

    init(listeners: [ListenerConfig], certificates: CertificateTable) {
        port =
            listeners.lazy.filter { $0.protocol == .https }.compactMap { listener -> Int? in
                guard case .inet(_, let port)? = ListenAddress(listener.address) else { return nil }
                return port
            }.first
        self.certificates = certificates
    }

    func response(for request: RoutingRequest) -> StaticResponse? {
        guard let port, request.request.scheme == "http", !request.path.hasPrefix(Self.challengePrefix),
            !request.host.isEmpty, certificates.covers(request.host)
        else { return nil }
        let host = request.host.contains(":") ? "[\(request.host)]" : String(request.host)
        let authority = port == 443 ? host : "\(host):\(port)"
        return StaticResponse(redirectTo: "https://\(authority)\(request.request.path ?? "/")")
    }
}
