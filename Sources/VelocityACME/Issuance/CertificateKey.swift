import Crypto
import CryptoExtras
import SwiftASN1
import VelocityConfig
import X509

/// A new key for a certificate, of the policy's type, and the CSR (RFC 2986) that asks for `names` with it.
struct CertificateKey {
    let privateKeyPEM: String
    private let key: Certificate.PrivateKey
    private let signatureAlgorithm: Certificate.SignatureAlgorithm

    init(_ type: CertificateKeyType) throws {
        switch type {
        case .p256:
            let key = P256.Signing.PrivateKey()
            self.key = Certificate.PrivateKey(key)
            privateKeyPEM = key.pemRepresentation + "\n"
            signatureAlgorithm = .ecdsaWithSHA256
        case .p384:
            let key = P384.Signing.PrivateKey()
            self.key = Certificate.PrivateKey(key)
            privateKeyPEM = key.pemRepresentation + "\n"
            signatureAlgorithm = .ecdsaWithSHA384
        case .rsa2048:
            let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            self.key = Certificate.PrivateKey(key)
            privateKeyPEM = key.pemRepresentation + "\n"
            signatureAlgorithm = .sha256WithRSAEncryption
        }
    }

    /// DER. The subject is empty: CAs take the names from the subjectAltName extension request alone.
    func signingRequest(for names: [String]) throws -> [UInt8] {
        let extensions = try Certificate.Extensions {
            SubjectAlternativeNames(names.map { .dnsName($0) })
        }
        let request = try CertificateSigningRequest(
            version: .v1,
            subject: DistinguishedName(),
            privateKey: key,
            attributes: CertificateSigningRequest.Attributes([try .init(ExtensionRequest(extensions: extensions))]),
            signatureAlgorithm: signatureAlgorithm
        )
        var serializer = DER.Serializer()
        try serializer.serialize(request)
        return serializer.serializedBytes
    }
}
