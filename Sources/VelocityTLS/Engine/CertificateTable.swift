/// The certificates of one snapshot, found by server name the way clients check them: the exact name first,
/// then a `*.` wildcard covering its first label, then the default.
public struct CertificateTable: Sendable {
    private var exact: [String: TLSCredential] = [:]
    private var wildcard: [String: TLSCredential] = [:]
    private let fallback: TLSCredential?
    /// Every certificate in the table, in the order given.
    public let credentials: [TLSCredential]

    /// Earlier credentials win a name both cover, so configured certificates can be listed before automatic ones.
    public init(_ credentials: [TLSCredential], default fallback: TLSCredential? = nil) {
        self.fallback = fallback ?? credentials.first
        self.credentials = credentials
        for credential in credentials {
            for name in credential.names {
                if name.hasPrefix("*.") {
                    if wildcard[String(name.dropFirst(2))] == nil { wildcard[String(name.dropFirst(2))] = credential }
                } else if exact[name] == nil {
                    exact[name] = credential
                }
            }
        }
    }

    public var isEmpty: Bool { fallback == nil }

    /// Whether a certificate other than the default covers `name`, so HTTPS for it will be trusted.
    public func covers(_ name: some StringProtocol) -> Bool {
        let name = String(name)
        if exact[name] != nil { return true }
        guard let dot = name.firstIndex(of: ".") else { return false }
        return wildcard[String(name[name.index(after: dot)...])] != nil
    }

    /// The credential for `name` (lowercased, no trailing dot), or the default.
    public func credential(for name: String?) -> TLSCredential? {
        guard let name else { return fallback }
        if let credential = exact[name] { return credential }
        if let dot = name.firstIndex(of: "."), let credential = wildcard[String(name[name.index(after: dot)...])] {
            return credential
        }
        return fallback
    }
}
