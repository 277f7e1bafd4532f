import Foundation
import SwiftASN1
import Testing
import VelocityTLS
// The SPI gives RFC5280Policy a fixed validation time without the deprecated init(validationTime:).
@_spi(FixedExpiryValidationTime) import X509

@Suite struct InternalCATests {
    /// A fixed instant so that validity checks are exact.
    let now = Date(timeIntervalSince1970: 1_767_225_600.75)  // 2026-01-01T00:00:00.75Z
    var start: Date { Date(timeIntervalSince1970: 1_767_225_600) }

    @Test func createdRootIsALongLivedSelfSignedCA() throws {
        let ca = try InternalCA.create(now: now)
        let root = try Certificate(pemEncoded: ca.certificatePEM)

        #expect(root.subject.description == "CN=Velocity Local Authority - 2026 ECC Root")
        #expect(root.issuer == root.subject)
        #expect(root.publicKey.isValidSignature(root.signature, for: root))
        #expect(try root.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
        #expect(root.extensions[oid: .X509ExtensionID.basicConstraints]?.critical == true)
        #expect(try root.extensions.keyUsage == KeyUsage(keyCertSign: true, cRLSign: true))
        #expect(try root.extensions.subjectKeyIdentifier?.keyIdentifier.count == 20)
        #expect(root.serialNumber.bytes.count == 20 && root.serialNumber.bytes.first! < 0x80)
        #expect(root.notValidBefore == start - 3600)
        #expect(root.notValidAfter == Date(timeIntervalSince1970: 2_082_758_400))  // 2036-01-01T00:00:00Z
        #expect(ca.privateKeyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
    }

    @Test func createdRootRoundTripsThroughPEM() async throws {
        let created = try InternalCA.create(now: now)
        let loaded = try InternalCA(certificatePEM: created.certificatePEM, privateKeyPEM: created.privateKeyPEM)
        #expect(loaded.certificatePEM == created.certificatePEM)
        #expect(loaded.privateKeyPEM == created.privateKeyPEM)

        let bundle = try loaded.issue(for: ["app.localhost"], now: now)
        #expect(await validate(bundle, against: created, hostname: "app.localhost"))
    }

    @Test func mismatchedOrUnusableRootsAreRefused() throws {
        let one = try InternalCA.create(now: now)
        let other = try InternalCA.create(now: now)
        #expect(throws: InternalCAError.keyDoesNotMatchCertificate) {
            try InternalCA(certificatePEM: one.certificatePEM, privateKeyPEM: other.privateKeyPEM)
        }
        #expect(throws: InternalCAError.unreadablePrivateKey) {
            try InternalCA(certificatePEM: one.certificatePEM, privateKeyPEM: "not a key")
        }
        #expect {
            try InternalCA(certificatePEM: "not a certificate", privateKeyPEM: one.privateKeyPEM)
        } throws: { error in
            guard case .unreadableCertificate = error as? InternalCAError else { return false }
            return true
        }
        let leaf = try one.issue(for: ["leaf.internal"], now: now)
        #expect(throws: InternalCAError.notACertificateAuthority) {
            try InternalCA(certificatePEM: leaf.certificateChainPEM, privateKeyPEM: leaf.privateKeyPEM)
        }
    }

    @Test func issuedLeafIsAServerCertificateForItsNames() throws {
        let ca = try InternalCA.create(now: now)
        let bundle = try ca.issue(for: ["App.Localhost", "*.dev.internal", "127.0.0.1", "0:0::1"], now: now)
        let root = try Certificate(pemEncoded: ca.certificatePEM)
        let leaf = try Certificate(pemEncoded: bundle.certificateChainPEM)

        #expect(bundle.names == ["app.localhost", "*.dev.internal", "127.0.0.1", "::1"])
        let alternativeNames = try #require(try leaf.extensions.subjectAlternativeNames)
        #expect(
            Array(alternativeNames) == [
                .dnsName("app.localhost"), .dnsName("*.dev.internal"),
                .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                .ipAddress(ASN1OctetString(contentBytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])),
            ]
        )
        #expect(leaf.subject.description == "CN=app.localhost")
        #expect(leaf.issuer == root.subject)
        #expect(try leaf.extensions.extendedKeyUsage?.contains(.serverAuth) == true)
        #expect(try leaf.extensions.basicConstraints == .notCertificateAuthority)
        #expect(try leaf.extensions.keyUsage == KeyUsage(digitalSignature: true))
        #expect(
            try leaf.extensions.authorityKeyIdentifier?.keyIdentifier
                == root.extensions.subjectKeyIdentifier?.keyIdentifier
        )
        #expect(try leaf.extensions.subjectKeyIdentifier != nil)
        #expect(leaf.notValidBefore == start - 3600 && bundle.notBefore == leaf.notValidBefore)
        #expect(leaf.notValidAfter == start + 7 * 24 * 3600 && bundle.notAfter == leaf.notValidAfter)

        #expect(bundle.privateKeyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        #expect(try Certificate.PrivateKey(pemEncoded: bundle.privateKeyPEM).publicKey == leaf.publicKey)
    }

    @Test(
        arguments: [
            ("app.localhost", nil), ("x.dev.internal", nil), (nil, "127.0.0.1"), (nil, "::1"),
        ] as [(String?, String?)])
    func issuedLeafVerifiesAgainstTheRoot(hostname: String?, address: String?) async throws {
        let ca = try InternalCA.create(now: now)
        let bundle = try ca.issue(for: ["app.localhost", "*.dev.internal", "127.0.0.1", "::1"], now: now)
        #expect(await validate(bundle, against: ca, hostname: hostname, address: address))
    }

    @Test(
        arguments: [
            ("other.localhost", nil), ("dev.internal", nil), ("a.b.dev.internal", nil), (nil, "127.0.0.2"),
            (nil, "::2"),
        ] as [(String?, String?)])
    func issuedLeafDoesNotVerifyForOtherNames(hostname: String?, address: String?) async throws {
        let ca = try InternalCA.create(now: now)
        let bundle = try ca.issue(for: ["app.localhost", "*.dev.internal", "127.0.0.1", "::1"], now: now)
        #expect(await !validate(bundle, against: ca, hostname: hostname, address: address))
    }

    @Test func leafIsValidOnlyForTheLifetimeAsked() async throws {
        let ca = try InternalCA.create(now: now)
        let bundle = try ca.issue(for: ["short.internal"], now: now, lifetime: 3600)
        #expect(bundle.notAfter == start + 3600)
        #expect(await validate(bundle, against: ca, hostname: "short.internal", at: start + 3599))
        #expect(await !validate(bundle, against: ca, hostname: "short.internal", at: start + 3601))
        #expect(await !validate(bundle, against: ca, hostname: "short.internal", at: start - 3601))
    }

    @Test func leafNeverOutlivesTheRoot() throws {
        let ca = try InternalCA.create(now: now)
        let rootNotAfter = try Certificate(pemEncoded: ca.certificatePEM).notValidAfter
        let bundle = try ca.issue(for: ["late.internal"], now: rootNotAfter - 3600)
        #expect(bundle.notAfter == rootNotAfter)
        #expect(throws: InternalCAError.rootExpired(notAfter: rootNotAfter)) {
            try ca.issue(for: ["late.internal"], now: rootNotAfter + 1)
        }
    }

    @Test func longFirstNameLeavesTheSubjectEmptyAndTheSANCritical() async throws {
        let long = String(repeating: "a", count: 60) + ".example.internal"
        // The current time, because openssl verifies at the current time.
        let ca = try InternalCA.create()
        let bundle = try ca.issue(for: [long])
        let leaf = try Certificate(pemEncoded: bundle.certificateChainPEM)
        #expect(leaf.subject.isEmpty)
        #expect(leaf.extensions[oid: .X509ExtensionID.subjectAlternativeName]?.critical == true)
        #expect(await validate(bundle, against: ca, hostname: long, at: Date()))
        #expect(try openSSLVerify(bundle, against: ca, checking: ["-verify_hostname", long]))
    }

    @Test func openSSLVerifiesTheLeafAgainstTheRoot() throws {
        let ca = try InternalCA.create()
        let bundle = try ca.issue(for: ["app.localhost", "*.dev.internal", "10.0.0.1", "fd00::1"])
        #expect(try openSSLVerify(bundle, against: ca, checking: ["-verify_hostname", "app.localhost"]))
        #expect(try openSSLVerify(bundle, against: ca, checking: ["-verify_hostname", "x.dev.internal"]))
        #expect(try openSSLVerify(bundle, against: ca, checking: ["-verify_ip", "10.0.0.1"]))
        #expect(try openSSLVerify(bundle, against: ca, checking: ["-verify_ip", "fd00::1"]))
        #expect(try !openSSLVerify(bundle, against: ca, checking: ["-verify_hostname", "other.localhost"]))
        #expect(try !openSSLVerify(bundle, against: InternalCA.create(), checking: []))
    }

    @Test func emptyNameListIsRefused() throws {
        let ca = try InternalCA.create(now: now)
        #expect(throws: InternalCAError.noNames) { try ca.issue(for: [], now: now) }
        #expect(throws: InternalCAError.invalidLifetime(0)) { try ca.issue(for: ["a.internal"], lifetime: 0) }
    }

    @Test(arguments: [
        "", ".", "*", "*.", "a.*.internal", "*.*.internal", "foo*.internal", "bad name.internal", "-a.internal",
        "a-.internal", "a..internal", "under_score.internal", "10.0.0.256", "1.2.3", "::g", "[::1]", "é.localhost",
        "\u{212A}.localhost", String(repeating: "a", count: 64) + ".internal",
        Array(repeating: "abcdefghi", count: 26).joined(separator: "."),
    ])
    func invalidNamesAreRefused(name: String) throws {
        let ca = try InternalCA.create(now: now)
        #expect {
            try ca.issue(for: ["ok.internal", name], now: now)
        } throws: { error in
            guard case .invalidName(let refused, _) = error as? InternalCAError else { return false }
            return refused == name
        }
    }

    @Test func repeatedNamesAreListedOnce() throws {
        let ca = try InternalCA.create(now: now)
        let bundle = try ca.issue(for: ["a.internal", "A.internal.", "::1", "0::1"], now: now)
        #expect(bundle.names == ["a.internal", "::1"])
    }

    @Test(arguments: [
        "localhost", "LOCALHOST", "app.localhost", "*.localhost", "a.b.localhost", "svc.internal", "*.internal",
        "*.svc.internal", "127.0.0.1", "192.168.1.10", "::1", "fe80::1",
    ])
    func privateUseNamesAreCoveredAutomatically(name: String) {
        #expect(InternalCA.coversAutomatically(name))
    }

    @Test(arguments: [
        "example.com", "*.example.com", "localhost.example.com", "internal", "mylocalhost", "app.internalx", "",
        "bad name.localhost", "a.*.localhost", "10.0.0.256",
    ])
    func publicOrInvalidNamesAreNotCoveredAutomatically(name: String) {
        #expect(!InternalCA.coversAutomatically(name))
    }

    // MARK: - Helpers

    /// Whether swift-certificates builds a chain from the leaf to the CA's root that meets RFC 5280 and the
    /// server identity checks at `time`.
    private func validate(
        _ bundle: CertificateBundle,
        against ca: InternalCA,
        hostname: String? = nil,
        address: String? = nil,
        at time: Date? = nil
    ) async -> Bool {
        guard let root = try? Certificate(pemEncoded: ca.certificatePEM),
            let leaf = try? Certificate(pemEncoded: bundle.certificateChainPEM)
        else { return false }
        var verifier = Verifier(rootCertificates: CertificateStore([root])) {
            RFC5280Policy(fixedExpiryValidationTime: time ?? now)
            ServerIdentityPolicy(serverHostname: hostname, serverIP: address)
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore())
        guard case .validCertificate(let chain) = result else { return false }
        return chain.count == 2
    }

    /// Whether `openssl verify` (another implementation) accepts the leaf as a TLS server certificate under the
    /// CA's root, with extra checks such as `-verify_hostname`.
    private func openSSLVerify(_ bundle: CertificateBundle, against ca: InternalCA, checking: [String]) throws -> Bool {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("internal-ca-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let rootFile = directory.appendingPathComponent("root.pem")
        let leafFile = directory.appendingPathComponent("leaf.pem")
        try ca.certificatePEM.write(to: rootFile, atomically: true, encoding: .utf8)
        try bundle.certificateChainPEM.write(to: leafFile, atomically: true, encoding: .utf8)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            ["openssl", "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", rootFile.path]
            + checking + [leafFile.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return process.terminationStatus == 0 && text.contains("\(leafFile.path): OK")
    }
}
