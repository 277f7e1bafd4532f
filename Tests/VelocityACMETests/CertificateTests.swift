import Crypto
import Foundation
import SwiftASN1
import Testing
import VelocityConfig
import X509

@testable import VelocityACME

@Suite struct CertificateTests {
    @Test(arguments: CertificateKeyType.allCases)
    func theSigningRequestNamesTheHostAndIsSignedByTheKey(_ type: CertificateKeyType) throws {
        let key = try CertificateKey(type)
        let der = try key.signingRequest(for: ["www.example.com"])
        let request = try CertificateSigningRequest(derEncoded: der)
        #expect(request.subject == DistinguishedName())
        let extensions = try #require(try request.attributes.extensionRequest).extensions
        #expect(try extensions.subjectAlternativeNames == SubjectAlternativeNames([.dnsName("www.example.com")]))
        #expect(request.publicKey == (try Certificate.PrivateKey(pemEncoded: key.privateKeyPEM)).publicKey)
        #expect(request.publicKey.isValidSignature(request.signature, for: request))
    }

    /// RFC 8737 §3: the name as the only SAN, and a critical acmeIdentifier extension with the SHA-256 of the
    /// key authorization.
    @Test func theTLSALPNCertificateCarriesTheKeyAuthorizationDigest() throws {
        let made = try TLSALPNCertificate.make(name: "a.example.com", keyAuthorization: "token.thumbprint")
        let certificate = try Certificate(pemEncoded: made.certificatePEM)
        #expect(
            try certificate.extensions.subjectAlternativeNames == SubjectAlternativeNames([.dnsName("a.example.com")]))
        let found = try #require(certificate.extensions[oid: TLSALPNCertificate.acmeIdentifierOID])
        #expect(found.critical)
        #expect(
            try TLSALPNCertificate.acmeIdentifier(of: certificate)
                == Array(SHA256.hash(data: Array("token.thumbprint".utf8))))
        #expect(found.value.prefix(2) == [0x04, 0x20])
    }

    @Test func keyAuthorizationIsTokenDotThumbprint() {
        let jwk = JSONWebKey(members: ["kty": "EC", "crv": "P-256", "x": "a", "y": "b"])
        #expect(KeyAuthorization.make(token: "tok", accountKey: jwk) == "tok.\(jwk.thumbprint)")
        #expect(KeyAuthorization.isToken("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"))
        #expect(!KeyAuthorization.isToken("../../etc/passwd"))
        #expect(!KeyAuthorization.isToken(""))
    }

    @Test func anIssuedChainIsDatedByItsLeaf() throws {
        let now = Date(timeIntervalSince1970: 2_000_000_000)
        let leaf = try TLSALPNCertificate.make(name: "a.test", keyAuthorization: "x", now: now)
        let intermediate = try TLSALPNCertificate.make(name: "b.test", keyAuthorization: "y", now: now - 86400)
        let issued = try IssuedCertificate(
            chainPEM: leaf.certificatePEM + intermediate.certificatePEM, privateKeyPEM: leaf.privateKeyPEM,
            issuer: "https://ca.test/dir")
        #expect(issued.notBefore == now - 3600)
        #expect(issued.notAfter == now + 7 * 24 * 3600)
    }
}
