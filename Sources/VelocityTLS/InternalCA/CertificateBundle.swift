import Foundation

/// A certificate chain and its private key, in PEM, ready for the TLS engine.
public struct CertificateBundle: Sendable, Equatable {
    /// One or more `CERTIFICATE` blocks, leaf first. The internal CA gives the leaf only: clients trust its root,
    /// so sending the root in every handshake would only add bytes.
    public var certificateChainPEM: String
    /// The leaf's key as a PKCS#8 `PRIVATE KEY` block.
    public var privateKeyPEM: String
    /// The DNS names (lowercase) and IP addresses (canonical text) the certificate covers, in the order asked for.
    public var names: [String]
    public var notBefore: Date
    public var notAfter: Date

    public init(certificateChainPEM: String, privateKeyPEM: String, names: [String], notBefore: Date, notAfter: Date) {
        self.certificateChainPEM = certificateChainPEM
        self.privateKeyPEM = privateKeyPEM
        self.names = names
        self.notBefore = notBefore
        self.notAfter = notAfter
    }
}
