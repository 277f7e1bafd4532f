import Crypto
import VelocityConfig

/// A public key as a JSON Web Key (RFC 7517), reduced to the members RFC 7638 §3.2 requires, and its thumbprint.
struct JSONWebKey: Sendable, Equatable {
    /// The required members; their values are base64url or fixed words, never text that needs JSON escaping.
    let members: [String: String]

    /// An ES256 account key: kty EC, crv P-256, and the affine coordinates.
    init(_ key: P256.Signing.PublicKey) {
        let point = Array(key.x963Representation)  // 0x04 || x || y
        members = [
            "kty": "EC", "crv": "P-256",
            "x": Base64.encodeURLSafe(point[1...32]), "y": Base64.encodeURLSafe(point[33...64]),
        ]
    }

    init(members: [String: String]) {
        self.members = members
    }

    /// The members in lexicographic order without whitespace: the exact bytes RFC 7638 hashes, and a valid
    /// `jwk` header value.
    var canonicalJSON: String {
        "{" + members.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\"\($0.value)\"" }.joined(separator: ",") + "}"
    }

    /// RFC 7638: base64url of the SHA-256 of the canonical JSON; the second half of every key authorization.
    var thumbprint: String {
        Base64.encodeURLSafe(Array(SHA256.hash(data: Array(canonicalJSON.utf8))))
    }
}
