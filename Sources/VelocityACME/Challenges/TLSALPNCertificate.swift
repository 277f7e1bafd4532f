import Crypto
import Foundation
import SwiftASN1
import X509

/// The self-signed certificate that answers a TLS-ALPN-01 challenge (RFC 8737 §3): the name as its only SAN,
/// and the critical acmeIdentifier extension holding the SHA-256 of the key authorization.
enum TLSALPNCertificate {
    /// id-pe-acmeIdentifier, 1.3.6.1.5.5.7.1.31.
    static let acmeIdentifierOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 1, 31]

    static func make(name: String, keyAuthorization: String, now: Date = Date()) throws -> (
        certificatePEM: String, privateKeyPEM: String
    ) {
        let key = P256.Signing.PrivateKey()
        let digest = Array(SHA256.hash(data: Array(keyAuthorization.utf8)))
        // The extension's value is the DER of `Authorization ::= OCTET STRING (SIZE (32))`.
        var serializer = DER.Serializer()
        try serializer.serialize(ASN1OctetString(contentBytes: digest[...]))
        let subject = try DistinguishedName { CommonName(name) }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(key.publicKey),
            notValidBefore: now - 3600,
            notValidAfter: now + 7 * 24 * 3600,
            issuer: subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                SubjectAlternativeNames([.dnsName(name)])
                Certificate.Extension(oid: acmeIdentifierOID, critical: true, value: serializer.serializedBytes[...])
            },
            issuerPrivateKey: .init(key)
        )
        return (try certificate.serializeAsPEM().pemString + "\n", key.pemRepresentation + "\n")
    }

    /// The SHA-256 in a certificate's acmeIdentifier extension, for tests and checks.
    static func acmeIdentifier(of certificate: Certificate) throws -> [UInt8]? {
        guard let found = certificate.extensions[oid: acmeIdentifierOID] else { return nil }
        return Array(try ASN1OctetString(derEncoded: found.value).bytes)
    }
}
