/// Lets a request through only with the username and password of one of the accounts (RFC 7617); otherwise
/// answers 401 with a `WWW-Authenticate` challenge.
public struct BasicAuthConfig: Decodable, Sendable, Equatable {
    public var accounts: [BasicAuthAccount]
    /// Shown by browsers in the login prompt. Default `restricted`.
    public var realm: String?
}

public struct BasicAuthAccount: Decodable, Sendable, Equatable {
    public var username: String
    /// An scrypt hash as printed by `velocity hash-password`: `$scrypt$ln=…,r=…,p=…$salt$hash`.
    public var password: String
}
