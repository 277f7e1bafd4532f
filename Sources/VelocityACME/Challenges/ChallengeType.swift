/// The challenges Velocity answers itself; DNS-01 needs a DNS provider and is not among them.
public enum ChallengeType: String, Sendable, Hashable, CaseIterable {
    /// RFC 8555 §8.3: a file at `/.well-known/acme-challenge/<token>` on port 80.
    case http01 = "http-01"
    /// RFC 8737: a certificate shown to handshakes offering ALPN `acme-tls/1` on port 443.
    case tlsALPN01 = "tls-alpn-01"
}

/// RFC 8555 §8.1: what proves control of the account key.
enum KeyAuthorization {
    static func make(token: String, accountKey: JSONWebKey) -> String {
        "\(token).\(accountKey.thumbprint)"
    }

    /// Tokens are base64url (§8.3); anything else is never looked up.
    static func isToken(_ text: some StringProtocol) -> Bool {
        !text.isEmpty && text.utf8.count <= 256
            && text.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
                    true
                default: false
                }
            }
    }
}
