import Crypto
import Foundation
import Testing
import VelocityConfig

@testable import VelocityACME

/// Base64url-decoded, or a test failure.
private func decoded(_ text: String?) throws -> [UInt8] {
    try #require(text.flatMap(Base64.decodeURLSafe))
}

@Suite struct JOSETests {
    /// RFC 7638 §3.1: the thumbprint of the RSA key of RFC 7517 appendix A.1.
    @Test func thumbprintMatchesRFC7638() {
        let key = JSONWebKey(members: [
            "kty": "RSA", "e": "AQAB",
            "n":
                "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiF"
                + "V4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9"
                + "c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1"
                + "jF44-csFCur-kEgU8awapJzKnqDKgw",
        ])
        #expect(key.thumbprint == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
    }

    @Test func anES256KeyHasTheRequiredMembersInOrder() throws {
        let key = P256.Signing.PrivateKey()
        let jwk = JSONWebKey(key.publicKey)
        let json = jwk.canonicalJSON
        #expect(json.hasPrefix(#"{"crv":"P-256","kty":"EC","x":""#))
        let members = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String])
        let x = try decoded(members["x"])
        let y = try decoded(members["y"])
        #expect([0x04] + x + y == Array(key.publicKey.x963Representation))
    }

    @Test func es256SignaturesVerifyAndTheHeaderNamesKeyNonceAndURL() throws {
        let key = P256.Signing.PrivateKey()
        let jws = try JSONWebSignature.es256(
            payload: Data(#"{"a":1}"#.utf8), url: "https://ca.test/acme/new-order", nonce: "n0nce",
            signer: .account("https://ca.test/acme/acct/1"), key: key)
        let header = try #require(
            try JSONSerialization.jsonObject(with: Data(try decoded(jws.protected))) as? [String: String])
        #expect(
            header == [
                "alg": "ES256", "kid": "https://ca.test/acme/acct/1", "nonce": "n0nce",
                "url": "https://ca.test/acme/new-order",
            ])
        #expect(Base64.decodeURLSafe(jws.payload) == Array(#"{"a":1}"#.utf8))
        let signature = try P256.Signing.ECDSASignature(rawRepresentation: try decoded(jws.signature))
        #expect(key.publicKey.isValidSignature(signature, for: Array("\(jws.protected).\(jws.payload)".utf8)))
    }

    @Test func postAsGetHasAnEmptyPayloadAndANewAccountShowsItsKey() throws {
        let key = P256.Signing.PrivateKey()
        let jws = try JSONWebSignature.es256(
            payload: nil, url: "https://ca.test/x", nonce: "n", signer: .key(JSONWebKey(key.publicKey)), key: key)
        #expect(jws.payload == "")
        let header = String(decoding: try decoded(jws.protected), as: UTF8.self)
        #expect(header.contains(#""jwk":{"crv":"P-256","kty":"EC""#))
        #expect(!header.contains("kid"))
    }

    @Test func externalAccountBindingIsAnHMACOverTheAccountKey() throws {
        let accountKey = JSONWebKey(P256.Signing.PrivateKey().publicKey)
        let macKey = Array("a secret of thirty-two bytes!!!!".utf8)
        let binding = try JSONWebSignature.externalAccountBinding(
            accountKey: accountKey, keyID: "kid-1", macKey: macKey, url: "https://ca.test/new-account")
        #expect(Base64.decodeURLSafe(binding.payload) == Array(accountKey.canonicalJSON.utf8))
        let header = String(decoding: try decoded(binding.protected), as: UTF8.self)
        #expect(header == #"{"alg":"HS256","kid":"kid-1","url":"https://ca.test/new-account"}"#)
        let mac = try decoded(binding.signature)
        #expect(
            HMAC<SHA256>.isValidAuthenticationCode(
                mac, authenticating: Array("\(binding.protected).\(binding.payload)".utf8),
                using: SymmetricKey(data: macKey)))
    }
}

extension JOSETests {
    @Test func issuerSettingsNeverPrintTheMACKey() {
        let settings = ACMEIssuerSettings(
            directoryURL: "https://ca.test/dir", email: nil,
            externalAccount: .init(keyID: "kid-7", macKey: Array("hunter2".utf8)), challenges: [.http01],
            keyType: .p256, trustedRootsPEM: nil)
        let printed = "\(settings) \(settings.externalAccount!) \(ManagedName(name: "a.test", issuers: [settings]))"
        #expect(!printed.contains("104"))  // the first byte of "hunter2"
        #expect(printed.contains("kid-7"))
    }
}
