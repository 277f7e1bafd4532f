import Foundation
import SwiftASN1
import X509

/// A certificate chain and its key as the store keeps them (namespace `certificates`, one record per name, so
/// the chain and its key are replaced together). The key never leaves the store but for the TLS engine.
public struct IssuedCertificate: Codable, Sendable, Equatable {
    public var chainPEM: String
    public var privateKeyPEM: String
    /// The ACME directory it came from.
    public var issuer: String
    public var notBefore: Date
    public var notAfter: Date

    enum CodingKeys: String, CodingKey {
        case chainPEM = "chain_pem"
        case privateKeyPEM = "key_pem"
        case issuer
        case notBefore = "not_before"
        case notAfter = "not_after"
    }

    init(chainPEM: String, privateKeyPEM: String, issuer: String) throws {
        guard let first = try PEMDocument.parseMultiple(pemString: chainPEM).first else {
            throw CertificateError.noCertificate
        }
        let leaf = try Certificate(derEncoded: first.derBytes)
        self.chainPEM = chainPEM
        self.privateKeyPEM = privateKeyPEM
        self.issuer = issuer
        notBefore = leaf.notValidBefore
        notAfter = leaf.notValidAfter
    }

    /// The leaf's DER.
    public var leafDER: [UInt8]? {
        (try? PEMDocument.parseMultiple(pemString: chainPEM).first)?.derBytes
    }

    /// Its ARI certificate ID; nil when it has no authority key identifier.
    var renewalInfoID: String? {
        guard let first = try? PEMDocument.parseMultiple(pemString: chainPEM).first,
            let leaf = try? Certificate(derEncoded: first.derBytes)
        else { return nil }
        return RenewalInfo.certificateID(of: leaf)
    }

    /// When renewal is due: with a third of the lifetime left (Let's Encrypt's advice without ARI).
    public var renewalTime: Date {
        notAfter - notAfter.timeIntervalSince(notBefore) / 3
    }
}

enum CertificateError: Error {
    case noCertificate
}
