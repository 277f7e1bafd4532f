/// Certificates and how they are obtained. Stored and validated now; served once the HTTPS listener lands.
public struct TLSConfig: Decodable, Sendable, Equatable {
    public var certificates: [CertificateConfig]?
    public var automation: AutomationConfig?
}

/// A certificate and its key, from files or inline PEM.
public struct CertificateConfig: Decodable, Sendable, Equatable {
    public var certificateFile: String?
    public var keyFile: String?
    public var certificatePEM: String?
    public var keyPEM: String?
    public var tags: [String]?

    enum CodingKeys: String, CodingKey {
        case certificateFile = "certificate_file"
        case keyFile = "key_file"
        case certificatePEM = "certificate_pem"
        case keyPEM = "key_pem"
        case tags
    }
}

/// How certificates for names without a configured one are obtained.
public struct AutomationConfig: Decodable, Sendable, Equatable {
    public var policies: [AutomationPolicy]?
}

public struct AutomationPolicy: Decodable, Sendable, Equatable {
    public enum Issuer: String, ConfigKeyword, Sendable {
        case acme
        case `internal`
    }

    /// Names this policy covers; absent means every name that needs a certificate.
    public var subjects: [String]?
    public var issuer: Issuer
    /// ACME directory URL (issuer `acme`).
    public var ca: String?
    public var email: String?
}
