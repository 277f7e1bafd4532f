import Foundation

/// A name whose certificate Velocity obtains, with the issuers to try in order.
public struct ManagedName: Sendable, Hashable {
    public var name: String
    public var issuers: [ACMEIssuerSettings]
    /// Why none of the issuers can be tried (no listener where the CA connects), reported as the error.
    public var problem: String?

    public init(name: String, issuers: [ACMEIssuerSettings], problem: String? = nil) {
        self.name = name
        self.issuers = issuers
        self.problem = problem
    }
}

/// What `GET /certificates` shows of a managed name.
public struct CertificateStatus: Sendable, Equatable {
    public enum State: String, Sendable {
        /// No certificate yet; issuance has not failed (or not yet been tried).
        case pending
        /// A certificate is served (renewal may be failing: see `lastError`).
        case valid
        /// No certificate, and the last attempt failed.
        case error
    }

    public var name: String
    public var state: State
    /// The ACME directory of the certificate served.
    public var issuer: String?
    public var notAfter: Date?
    public var renewalTime: Date?
    /// The CA's suggested renewal window (ARI), when it offers one.
    public var renewalWindow: ClosedRange<Date>?
    public var lastError: String?
    /// Nil while an attempt runs, or when none will be made until the config changes.
    public var nextAttempt: Date?
    /// `good` while a verified response is stapled, else why none is; nil when the certificate names no
    /// OCSP responder.
    public var ocsp: String?
    public var ocspNextUpdate: Date?
}
