import CNIOBoringSSL
import Foundation
import SwiftASN1
import VelocityConfig
import X509

/// Why a certificate or key could not be used.
public struct TLSCredentialError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// A certificate chain and its private key in BoringSSL's own form, parsed once and shared read-only by every
/// handshake that presents it.
public final class TLSCredential: @unchecked Sendable {
    // Immutable after init; BoringSSL takes its own references when a handshake uses them.
    let chain: [OpaquePointer]
    let privateKey: OpaquePointer
    /// DNS names and IP addresses (as text) from the leaf's subject alternative names.
    public let names: [String]
    public let notAfter: Date
    /// The issuer's distinguished name, for status pages.
    public let issuer: String
    /// A DER OCSP response to staple for clients that ask for the certificate's status.
    let ocspResponse: [UInt8]?

    public init(
        certificateChainPEM: String, privateKeyPEM: String, ocspResponse: [UInt8]? = nil
    ) throws(TLSCredentialError) {
        let blocks = (try? PEMDocument.parseMultiple(pemString: certificateChainPEM))?
            .filter { $0.discriminator == "CERTIFICATE" }
        guard let blocks, let first = blocks.first, let leaf = try? Certificate(derEncoded: first.derBytes) else {
            throw TLSCredentialError(description: "the certificate PEM does not hold a parsable CERTIFICATE block")
        }
        guard let key = Self.parsePrivateKey(privateKeyPEM) else {
            throw TLSCredentialError(description: "the private key PEM does not parse")
        }
        let buffers = blocks.compactMap { block in
            block.derBytes.withUnsafeBufferPointer { CRYPTO_BUFFER_new($0.baseAddress, $0.count, nil) }
        }
        chain = buffers
        privateKey = key
        names = Self.subjectAlternativeNames(of: leaf)
        notAfter = leaf.notValidAfter
        issuer = leaf.issuer.description
        self.ocspResponse = ocspResponse
        guard buffers.count == blocks.count, Self.keyMatches(leafDER: buffers[0], key: key) else {
            throw TLSCredentialError(description: "the private key does not belong to the certificate")
        }
    }

    deinit {
        for buffer in chain { CRYPTO_BUFFER_free(buffer) }
        EVP_PKEY_free(privateKey)
    }

    /// Hands the chain, key and any OCSP staple to one handshake (BoringSSL sends the staple only to clients
    /// that ask).
    func install(on ssl: OpaquePointer) -> Bool {
        var pointers: [OpaquePointer?] = chain
        let installed = pointers.withUnsafeMutableBufferPointer { buffer in
            SSL_set_chain_and_key(ssl, buffer.baseAddress, buffer.count, privateKey, nil) == 1
        }
        guard installed, let ocspResponse else { return installed }
        return ocspResponse.withUnsafeBufferPointer { SSL_set_ocsp_response(ssl, $0.baseAddress, $0.count) == 1 }
    }

    private static func parsePrivateKey(_ pem: String) -> OpaquePointer? {
        let bytes = Array(pem.utf8)
        return bytes.withUnsafeBytes { raw -> OpaquePointer? in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, raw.count) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
    }

    private static func keyMatches(leafDER: OpaquePointer, key: OpaquePointer) -> Bool {
        var data = CRYPTO_BUFFER_data(leafDER)
        guard let x509 = d2i_X509(nil, &data, Int(CRYPTO_BUFFER_len(leafDER))) else { return false }
        defer { X509_free(x509) }
        return X509_check_private_key(x509, key) == 1
    }

    private static func subjectAlternativeNames(of certificate: Certificate) -> [String] {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return [] }
        return names.compactMap { name in
            switch name {
            case .dnsName(let dns): dns.lowercased()
            case .ipAddress(let bytes): IPAddress(bytes: Array(bytes.bytes)).description
            default: nil
            }
        }
    }
}
