/// The certificates of one snapshot, found by server name the way clients check them: the exact name first,
/// then a `*.` wildcard covering its first label, then the default.
public struct CertificateTable: Sendable {
    // Keyed by Substring so that lookups with a slice of a request's host allocate nothing.
    private var exact: [Substring: TLSCredential] = [:]
    private var wildcard: [Substring: TLSCredential] = [:]
    private let fallback: TLSCredential?
    /// Every certificate in the table, in the order given.
    public let credentials: [TLSCredential]
    /// TLS-ALPN-01 challenge certificates by exact name, shown only to clients offering acme-tls/1.
    private let acmeChallenges: [String: TLSCredential]

    /// Earlier credentials win a name both cover, so configured certificates can be listed before automatic ones.
    public init(
        _ credentials: [TLSCredential], default fallback: TLSCredential? = nil,
        acmeChallenges: [String: TLSCredential] = [:]
    ) {
        self.fallback = fallback ?? credentials.first
        self.credentials = credentials
        self.acmeChallenges = acmeChallenges
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
        acmeChallenges[name]
    }

    /// The exact name, else a wildcard covering its first label.
    private func match(_ name: Substring) -> TLSCredential? {
        if let credential = exact[name] { return credential }
        guard let dot = name.utf8.firstIndex(of: UInt8(ascii: ".")) else { return nil }
        return wildcard[name[name.utf8.index(after: dot)...]]
    }
}
