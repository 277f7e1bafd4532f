/// Certificates, how they are obtained, and the handshake settings of every HTTPS listener.
public struct TLSConfig: Decodable, Sendable, Equatable {
    public var certificates: [CertificateConfig]?
    public var automation: AutomationConfig?
    /// Key-exchange groups in order of preference. Default: X25519MLKEM768, X25519, P-256.
    public var groups: [KeyExchangeGroup]?
    public var sessionTickets: SessionTicketsConfig?

    enum CodingKeys: String, CodingKey {
        case certificates, automation, groups
        case sessionTickets = "session_tickets"
    }
}

/// The key-exchange groups Velocity can offer; X25519MLKEM768 is the post-quantum hybrid.
public enum KeyExchangeGroup: String, ConfigKeyword, Sendable {
    case x25519MLKEM768 = "X25519MLKEM768"
    case x25519 = "X25519"
    case p256 = "P-256"
    case p384 = "P-384"
    case p521 = "P-521"

    public static let defaults: [KeyExchangeGroup] = [.x25519MLKEM768, .x25519, .p256]
}

/// TLS session resumption by tickets (RFC 8446 §4.6.1), encrypted with keys the server makes and replaces.
public struct SessionTicketsConfig: Decodable, Sendable, Equatable {
    /// Default true.
    public var enabled: Bool?
    /// Seconds a ticket key encrypts new tickets before a fresh one takes over; tickets under the two keys
    /// before it are still accepted. Default 43200 (12 hours), 60 to 604800.
    public var rotationSeconds: Int?

    public static let defaultRotationSeconds = 43200

    enum CodingKeys: String, CodingKey {
        case enabled
        case rotationSeconds = "rotation_seconds"
    }
}

/// A certificate and its key, from files or inline PEM.
public struct CertificateConfig: Decodable, Sendable, Equatable {
    public var certificateFile: String?
    public var keyFile: String?
    public var certificatePEM: String?
    public var keyPEM: String?
    /// A DER OCSP response for the certificate, stapled to handshakes of clients that ask for status.
    public var ocspStapleFile: String?
    public var tags: [String]?

    enum CodingKeys: String, CodingKey {
        case certificateFile = "certificate_file"
        case keyFile = "key_file"
        case certificatePEM = "certificate_pem"
        case keyPEM = "key_pem"
        case ocspStapleFile = "ocsp_staple_file"
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

    /// Names this policy covers (exact, or `*.` covering one label); absent means every name that needs a
    /// certificate.
    public var subjects: [String]?
    public var issuer: Issuer
    /// ACME directory URL (issuer `acme`). Default: Let's Encrypt.
    public var ca: String?
    public var email: String?
    /// The CA's terms of service are agreed to; an `acme` issuer is refused without it.
    public var acceptTerms: Bool?
    public var externalAccount: ExternalAccountConfig?
    public var challenges: ChallengesConfig?
    public var keyType: CertificateKeyType?
    /// PEM roots to trust for the CA's own HTTPS, besides the system's (a private or test CA).
    public var trustedRootsFile: String?

    public static let defaultCA = "https://acme-v02.api.letsencrypt.org/directory"

    enum CodingKeys: String, CodingKey {
        case subjects, issuer, ca, email, challenges
        case acceptTerms = "accept_terms"
        case externalAccount = "external_account"
        case keyType = "key_type"
        case trustedRootsFile = "trusted_roots_file"
    }
}

/// External Account Binding (RFC 8555 §7.3.4): the CA's key identifier and HMAC key (base64url).
public struct ExternalAccountConfig: Decodable, Sendable, Equatable {
    public var keyID: String
    public var macKey: String

    enum CodingKeys: String, CodingKey {
        case keyID = "key_id"
        case macKey = "mac_key"
    }
}

/// Which ACME challenges an issuer may use, and where the CA's validator arrives.
public struct ChallengesConfig: Decodable, Sendable, Equatable {
    public var http01: ChallengeConfig?
    public var tlsALPN01: ChallengeConfig?

    enum CodingKeys: String, CodingKey {
        case http01 = "http_01"
        case tlsALPN01 = "tls_alpn_01"
    }
}

public struct ChallengeConfig: Decodable, Sendable, Equatable {
    /// Default true.
    public var enabled: Bool?
    /// The port of Velocity's listener that the CA's connections reach (behind a port forward); default 80
    /// for HTTP-01, 443 for TLS-ALPN-01.
    public var alternatePort: Int?

    enum CodingKeys: String, CodingKey {
        case enabled
        case alternatePort = "alternate_port"
    }
}

/// The key of certificates an issuer obtains.
public enum CertificateKeyType: String, ConfigKeyword, Sendable {
    case p256 = "P-256"
    case p384 = "P-384"
    /// For clients that know no ECDSA.
    case rsa2048 = "RSA-2048"
}
