/// The certificates of one snapshot, found by server name the way clients check them: the exact name first,
/// then a `*.` wildcard covering its first label, then the default.
public struct CertificateTable: Sendable {
    // Keyed by Substring so that lookups with a slice of a request's host allocate nothing.
    private var exact: [Substring: TLSCredential] = [:]
    private var wildcard: [Substring: TLSCredential] = [:]
    private let fallback: TLSCredential?
    /// Every certificate in the table, in the order given.
    public let credentials: [TLSCredential]
    /// Answers to pending ACME challenges; consulted only for `managedNames`.
    private let acmeChallenges: (any ACMEChallengeAnswers)?
    /// Names whose certificates Velocity obtains from an ACME CA.
    public let managedNames: Set<String>
    /// Managed names with no certificate yet: their handshakes fail with `unrecognized_name` rather than show
    /// the default certificate.
    public let pendingNames: Set<String>

    /// Earlier credentials win a name both cover, so configured certificates can be listed before automatic ones.
    public init(
        _ credentials: [TLSCredential], default fallback: TLSCredential? = nil,
        acmeChallenges: (any ACMEChallengeAnswers)? = nil, managedNames: Set<String> = [],
        pendingNames: Set<String> = []
    ) {
        self.fallback = fallback ?? credentials.first
        self.credentials = credentials
        self.acmeChallenges = acmeChallenges
        self.managedNames = managedNames
        self.pendingNames = pendingNames
        for credential in credentials {
            for name in credential.names {
                if name.hasPrefix("*.") {
                    wildcard[name.dropFirst(2)] = wildcard[name.dropFirst(2)] ?? credential
                } else {
                    exact[Substring(name)] = exact[Substring(name)] ?? credential
                }
            }
        }
    }

    public var isEmpty: Bool { fallback == nil }

    /// Whether a certificate other than the default covers `name`, so HTTPS for it will be trusted.
    public func covers(_ name: Substring) -> Bool {
        match(name) != nil
    }

    /// The credential for `name` (lowercased, no trailing dot), or the default.
    public func credential(for name: String?) -> TLSCredential? {
        name.flatMap { match(Substring($0)) } ?? fallback
    }

    /// The TLS-ALPN-01 challenge certificate for `name` (lowercased, no trailing dot), if one is pending.
    func acmeChallenge(for name: String) -> TLSCredential? {
        managedNames.contains(name) ? acmeChallenges?.tlsALPNCertificate(for: name) : nil
    }

    /// The HTTP-01 key authorization for `token` on `host`, if that challenge is pending.
    public func acmeHTTPAnswer(host: Substring, token: Substring) -> String? {
        managedNames.contains(String(host)) ? acmeChallenges?.httpKeyAuthorization(token: String(token)) : nil
    }

    /// The exact name, else a wildcard covering its first label.
    private func match(_ name: Substring) -> TLSCredential? {
        if let credential = exact[name] { return credential }
        guard let dot = name.utf8.firstIndex(of: UInt8(ascii: ".")) else { return nil }
        return wildcard[name[name.utf8.index(after: dot)...]]
    }
}

/// Where handshakes and the HTTP listener find answers to ACME challenges in progress. It lives outside the
/// snapshot, so a challenge needs no new snapshot, and may read a store that other instances share.
public protocol ACMEChallengeAnswers: Sendable {
    /// The RFC 8737 certificate for a pending TLS-ALPN-01 challenge.
    func tlsALPNCertificate(for name: String) -> TLSCredential?
    /// The key authorization of a pending HTTP-01 challenge.
    func httpKeyAuthorization(token: String) -> String?
}
