import Crypto
import Foundation
import SwiftASN1
import X509

/// The local certificate authority that gives HTTPS to names no public CA will certify (`localhost`, `*.internal`,
/// IP addresses). People trust its root once; Velocity then issues short-lived leaves on its own.
public struct InternalCA: Sendable {
    /// The root certificate, to be exported for people to trust.
    public let certificatePEM: String
    /// The root key, stored by the caller in its database; never logged.
    public let privateKeyPEM: String

    private let certificate: Certificate
    private let privateKey: Certificate.PrivateKey

    /// How far back `notBefore` is set, so that a client whose clock runs a little behind still accepts the
    /// certificate.
    private static let clockSkewAllowance: TimeInterval = 3600
    private static let rootLifetimeInYears = 10

    /// A new root: ECDSA P-256, self-signed, CA:true with pathLen 0 (it signs leaves only), keyCertSign and cRLSign,
    /// subject CN "Velocity Local Authority - <year> ECC Root" (like Caddy's, so people recognise it in a trust
    /// store), valid 10 years from `now` with `notBefore` an hour earlier, a random serial and a SubjectKeyIdentifier.
    public static func create(now: Date = Date()) throws(InternalCAError) -> InternalCA {
        let key = P256.Signing.PrivateKey()
        let start = now.wholeSeconds
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        guard let notAfter = calendar.date(byAdding: .year, value: rootLifetimeInYears, to: start) else {
            throw .certificateNotBuilt(reason: "no date \(rootLifetimeInYears) years after \(start)")
        }
        let year = calendar.component(.year, from: start)
        let certificate = try build {
            let name = try DistinguishedName { CommonName("Velocity Local Authority - \(year) ECC Root") }
            return try Certificate(
                version: .v3,
                serialNumber: randomSerialNumber(),
                publicKey: .init(key.publicKey),
                notValidBefore: start - clockSkewAllowance,
                notValidAfter: notAfter,
                issuer: name,
                subject: name,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(keyIdentifier: keyIdentifier(of: key.publicKey))
                },
                issuerPrivateKey: .init(key)
            )
        }
        let certificatePEM = try build { try certificate.serializeAsPEM().pemString + "\n" }
        return InternalCA(
            certificatePEM: certificatePEM,
            privateKeyPEM: key.pemRepresentation + "\n",
            certificate: certificate,
            privateKey: .init(key)
        )
    }

    /// Loads a root made earlier. Throws if the certificate or key does not parse, if the key is not the
    /// certificate's, or if the certificate is not a CA. An expired root still loads (so that it can be shown and
    /// replaced); `issue` refuses to use it.
    public init(certificatePEM: String, privateKeyPEM: String) throws(InternalCAError) {
        let certificate: Certificate
        do {
            certificate = try Certificate(pemEncoded: certificatePEM)
        } catch {
            throw .unreadableCertificate(reason: "\(error)")
        }
        guard let privateKey = try? Certificate.PrivateKey(pemEncoded: privateKeyPEM) else {
            throw .unreadablePrivateKey
        }
        guard privateKey.publicKey == certificate.publicKey else {
            throw .keyDoesNotMatchCertificate
        }
        guard case .isCertificateAuthority = try? certificate.extensions.basicConstraints else {
            throw .notACertificateAuthority
        }
        self.init(
            certificatePEM: certificatePEM,
            privateKeyPEM: privateKeyPEM,
            certificate: certificate,
            privateKey: privateKey
        )
    }

    private init(
        certificatePEM: String,
        privateKeyPEM: String,
        certificate: Certificate,
        privateKey: Certificate.PrivateKey
    ) {
        self.certificatePEM = certificatePEM
        self.privateKeyPEM = privateKeyPEM
        self.certificate = certificate
        self.privateKey = privateKey
    }

    /// A leaf for `names`: DNS names (a `*.` wildcard covers one label) and IPv4/IPv6 addresses, which go into
    /// iPAddress SANs. It has a new ECDSA P-256 key, is valid for `lifetime` from `now` (with `notBefore` an hour
    /// earlier, and never past the root's own expiry), and carries serverAuth, digitalSignature, CA:false, the
    /// root's key identifier and its own. Its subject CN is the first name, left out when longer than X.509's
    /// 64-character limit (the SAN extension is then critical, as RFC 5280 §4.2.1.6 requires of an empty subject).
    /// Repeated names are listed once.
    public func issue(
        for names: [String],
        now: Date = Date(),
        lifetime: TimeInterval = 7 * 24 * 3600
    ) throws(InternalCAError) -> CertificateBundle {
        guard !names.isEmpty else { throw .noNames }
        guard lifetime > 0, lifetime.isFinite else { throw .invalidLifetime(lifetime) }
        var covered: [Name] = []
        for text in names {
            let name = try Name(text)
            if !covered.contains(name) {
                covered.append(name)
            }
        }
        let start = now.wholeSeconds
        guard start < certificate.notValidAfter else {
            throw .rootExpired(notAfter: certificate.notValidAfter)
        }
        let notBefore = start - Self.clockSkewAllowance
        let notAfter = min((start + lifetime).wholeSeconds, certificate.notValidAfter)
        let key = P256.Signing.PrivateKey()
        let commonName = covered[0].text
        let rootKeyIdentifier = try? certificate.extensions.subjectKeyIdentifier?.keyIdentifier
        let leaf = try Self.build {
            let subject = try DistinguishedName {
                if commonName.utf8.count <= Self.maximumCommonNameLength {
                    CommonName(commonName)
                }
            }
            let alternativeNames = SubjectAlternativeNames(covered.map(\.generalName))
            return try Certificate(
                version: .v3,
                serialNumber: Self.randomSerialNumber(),
                publicKey: .init(key.publicKey),
                notValidBefore: notBefore,
                notValidAfter: notAfter,
                issuer: certificate.subject,
                subject: subject,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([.serverAuth])
                    SubjectKeyIdentifier(keyIdentifier: Self.keyIdentifier(of: key.publicKey))
                    if let rootKeyIdentifier {
                        AuthorityKeyIdentifier(keyIdentifier: rootKeyIdentifier)
                    }
                    try Certificate.Extension(alternativeNames, critical: subject.isEmpty)
                },
                issuerPrivateKey: privateKey
            )
        }
        return CertificateBundle(
            certificateChainPEM: try Self.build { try leaf.serializeAsPEM().pemString + "\n" },
            privateKeyPEM: key.pemRepresentation + "\n",
            names: covered.map(\.text),
            notBefore: notBefore,
            notAfter: notAfter
        )
    }

    /// Whether a name may get an internal certificate without being configured to: "localhost" and names under
    /// `.localhost` or `.internal` (wildcards included), and IP addresses. No public CA can certify these, so
    /// using the internal CA for them takes nothing away from anyone.
    public static func coversAutomatically(_ name: String) -> Bool {
        (try? Name(name))?.isPrivateUse ?? false
    }

    /// ub-common-name in RFC 5280 appendix A.
    private static let maximumCommonNameLength = 64

    /// 20 random bytes with the top bit clear and the first byte non-zero: a positive INTEGER of exactly the
    /// 20 octets RFC 5280 §4.1.2.2 allows, with 158 bits of randomness.
    private static func randomSerialNumber() -> Certificate.SerialNumber {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<20).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        bytes[0] = bytes[0] & 0x7F | 0x01
        return Certificate.SerialNumber(bytes: bytes)
    }

    /// RFC 7093 §2 method 1: the leftmost 160 bits of the SHA-256 of the subjectPublicKey bit string.
    private static func keyIdentifier(of key: P256.Signing.PublicKey) -> ArraySlice<UInt8> {
        ArraySlice(SHA256.hash(data: key.x963Representation).prefix(20))
    }

    /// Runs the swift-certificates and SwiftASN1 calls that build a certificate, turning their errors into ours.
    private static func build<T>(_ body: () throws -> T) throws(InternalCAError) -> T {
        do {
            return try body()
        } catch {
            throw .certificateNotBuilt(reason: "\(error)")
        }
    }
}

extension Date {
    /// X.509 times have whole seconds; rounding first makes the bundle's dates equal the certificate's.
    fileprivate var wholeSeconds: Date {
        Date(timeIntervalSince1970: timeIntervalSince1970.rounded(.down))
    }
}
