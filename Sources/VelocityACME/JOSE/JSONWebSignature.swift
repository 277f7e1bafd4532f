import Crypto
import Foundation
import VelocityConfig

/// A request body in the flattened JWS JSON serialization (RFC 7515 §7.2.2) that RFC 8555 §6.2 requires.
struct JSONWebSignature: Encodable, Sendable {
    let protected: String
    let payload: String
    let signature: String

    /// Who signs: a new account shows its key; an existing one names its account URL (RFC 8555 §6.2).
    enum Signer {
        case key(JSONWebKey)
        case account(String)
    }

    /// An ES256 signature over `payload` (nil for POST-as-GET, whose payload is empty).
    static func es256(
        payload: Data?, url: String, nonce: String, signer: Signer, key: P256.Signing.PrivateKey
    ) throws -> JSONWebSignature {
        var header = "{\"alg\":\"ES256\","
        switch signer {
        case .key(let jwk): header += "\"jwk\":\(jwk.canonicalJSON),"
        case .account(let url): header += "\"kid\":\(try jsonString(url)),"
        }
        header += "\"nonce\":\(try jsonString(nonce)),\"url\":\(try jsonString(url))}"
        let protected = Base64.encodeURLSafe(Array(header.utf8))
        let encodedPayload = payload.map { Base64.encodeURLSafe($0) } ?? ""
        // ES256 is the raw r || s form (RFC 7518 §3.4), not DER.
        let signature = try key.signature(for: Array("\(protected).\(encodedPayload)".utf8))
        return JSONWebSignature(
            protected: protected, payload: encodedPayload,
            signature: Base64.encodeURLSafe(signature.rawRepresentation))
    }

    /// The External Account Binding of a new account (RFC 8555 §7.3.4): the account key, MAC'd with the key the
    /// CA gave the operator.
    static func externalAccountBinding(
        accountKey: JSONWebKey, keyID: String, macKey: [UInt8], url: String
    ) throws -> JSONWebSignature {
        let header = "{\"alg\":\"HS256\",\"kid\":\(try jsonString(keyID)),\"url\":\(try jsonString(url))}"
        let protected = Base64.encodeURLSafe(Array(header.utf8))
        let payload = Base64.encodeURLSafe(Array(accountKey.canonicalJSON.utf8))
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array("\(protected).\(payload)".utf8), using: SymmetricKey(data: macKey))
        return JSONWebSignature(protected: protected, payload: payload, signature: Base64.encodeURLSafe(Array(mac)))
    }

    private static func jsonString(_ text: String) throws -> String {
        String(decoding: try JSONEncoder.acme.encode(text), as: UTF8.self)
    }
}

extension JSONEncoder {
    /// Compact, with sorted keys and unescaped slashes: what ACME servers expect to read.
    static var acme: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
