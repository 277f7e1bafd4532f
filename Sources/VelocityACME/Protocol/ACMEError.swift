/// Why an ACME operation failed, in words fit for a log line and the certificate status. Never carries key
/// material or request bodies.
public enum ACMEError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The CA answered with a problem document.
    case problem(ACMEProblem, url: String)
    /// The CA answered with an error status but no problem document.
    case status(Int, url: String)
    /// The CA could not be reached or the exchange broke off.
    case transport(String, url: String)
    /// The CA's answer did not parse or lacked what RFC 8555 requires.
    case malformed(String, url: String)
    /// An order, authorization or challenge ended invalid.
    case invalid(String)
    /// Polling gave up.
    case timedOut(String)
    /// No enabled challenge can be answered for a name.
    case noChallenge(String)

    public var description: String {
        switch self {
        case .problem(let problem, let url): "\(url): \(problem)"
        case .status(let status, let url): "\(url): HTTP status \(status)"
        case .transport(let reason, let url): "\(url): \(reason)"
        case .malformed(let reason, let url): "\(url): \(reason)"
        case .invalid(let reason): reason
        case .timedOut(let reason): reason
        case .noChallenge(let reason): reason
        }
    }

    /// A bad nonce is retried with the fresh nonce the error came with (RFC 8555 §6.5).
    var isBadNonce: Bool {
        if case .problem(let problem, _) = self { return problem.acmeError == "badNonce" }
        return false
    }
}
