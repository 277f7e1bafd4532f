import Foundation

/// Why the internal certificate authority could not load its root or issue a certificate.
public enum InternalCAError: Error, Sendable, Equatable {
    /// A certificate was asked for without any name to put in it.
    case noNames
    /// A name is neither a DNS name (optionally with a one-label `*.` wildcard) nor an IP address.
    case invalidName(String, reason: String)
    /// The validity asked for is not a positive, finite length of time.
    case invalidLifetime(TimeInterval)
    /// The root certificate PEM does not hold one X.509 certificate that parses.
    case unreadableCertificate(reason: String)
    /// The root private key PEM does not parse. The parser's message is left out so that no part of a key can
    /// reach a log through it.
    case unreadablePrivateKey
    /// The private key is not the one whose public half is in the root certificate.
    case keyDoesNotMatchCertificate
    /// The root certificate does not say it is a certificate authority (basic constraints CA:true).
    case notACertificateAuthority
    /// The root is no longer valid at the time a certificate was asked for; make a new root.
    case rootExpired(notAfter: Date)
    /// The certificate could not be built or signed (for example, a date outside what X.509 can encode).
    case certificateNotBuilt(reason: String)
}

extension InternalCAError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .noNames:
            "a certificate needs at least one DNS name or IP address"
        case .invalidName(let name, let reason):
            "\"\(name)\" cannot go in a certificate: \(reason)"
        case .invalidLifetime(let lifetime):
            "a certificate lifetime must be a positive number of seconds, not \(lifetime)"
        case .unreadableCertificate(let reason):
            "the internal CA's root certificate does not parse: \(reason)"
        case .unreadablePrivateKey:
            "the internal CA's root private key does not parse"
        case .keyDoesNotMatchCertificate:
            "the internal CA's root private key does not belong to its root certificate"
        case .notACertificateAuthority:
            "the internal CA's root certificate is not a CA certificate"
        case .rootExpired(let notAfter):
            "the internal CA's root certificate expired at \(notAfter); create a new root"
        case .certificateNotBuilt(let reason):
            "the certificate could not be built: \(reason)"
        }
    }
}
