import Crypto
import Foundation
import Testing
import X509

@testable import VelocityACME

@Suite struct RenewalInfoTests {
    /// RFC 9773 §4.1's example: key identifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4 and
    /// serial 0x87654321 (DER 00 87 65 43 21).
    @Test func certificateIDMatchesTheRFCExample() throws {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("example") }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(bytes: [0x87, 0x65, 0x43, 0x21]),
            publicKey: .init(key.publicKey), notValidBefore: Date(), notValidAfter: Date() + 86400, issuer: name,
            subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                AuthorityKeyIdentifier(keyIdentifier: [
                    0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C,
                    0xDE,
                    0x01, 0xC8, 0xD4,
                ])
            },
            issuerPrivateKey: .init(key))
        #expect(RenewalInfo.certificateID(of: certificate) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE")
    }

    @Test func windowsParseWithAndWithoutFractionalSeconds() throws {
        let json = #"{"suggestedWindow": {"start": "2025-01-02T04:00:00Z", "end": "2025-01-03T04:00:00.5Z"}}"#
        let info = try JSONDecoder.acme.decode(RenewalInfo.self, from: Data(json.utf8))
        #expect(info.suggestedWindow.start == Date(timeIntervalSince1970: 1_735_790_400))
        #expect(info.suggestedWindow.end == Date(timeIntervalSince1970: 1_735_876_800.5))
    }

    @Test func theMomentIsInTheWindow() {
        let window = RenewalInfo.Window(start: Date(timeIntervalSince1970: 100), end: Date(timeIntervalSince1970: 200))
        #expect(RenewalInfo.moment(in: window, random: 0) == window.start)
        #expect(RenewalInfo.moment(in: window, random: 0.5) == Date(timeIntervalSince1970: 150))
        #expect((window.start...window.end).contains(RenewalInfo.moment(in: window)))
    }

    private func issued(lifetime: TimeInterval, from start: Date) throws -> IssuedCertificate {
        let made = try TLSALPNCertificate.make(name: "a.test", keyAuthorization: "x")
        var certificate = try IssuedCertificate(
            chainPEM: made.certificatePEM, privateKeyPEM: made.privateKeyPEM, issuer: "https://ca.test/dir")
        certificate.notBefore = start
        certificate.notAfter = start + lifetime
        return certificate
    }

    @Test func aWindowOfTheCAMovesTheRenewalEarlierOrLater() throws {
        let now = Date()
        let certificate = try issued(lifetime: 90 * 86400, from: now)
        var entry = ManagedCertificate(ManagedName(name: "a.test", issuers: []), stored: certificate, now: now)
        #expect(entry.isRenewalInfoDue(at: now))
        entry.checkingRenewalInfo()
        #expect(!entry.isRenewalInfoDue(at: now + 86400))

        // A window in the past (the CA wants it replaced now): due at once.
        entry.renewalInfo(.init(start: now - 7200, end: now - 3600), retryAfter: 120, for: certificate, now: now)
        #expect(entry.isDue(at: now))
        #expect(entry.status(at: now).renewalWindow == (now - 7200)...(now - 3600))
        #expect(entry.isRenewalInfoDue(at: now + 120))

        // A later window: renewal inside it, not at the usual two-thirds point.
        let later = RenewalInfo.Window(start: now + 80 * 86400, end: now + 81 * 86400)
        entry.renewalInfo(later, retryAfter: nil, for: certificate, now: now)
        #expect(!entry.isDue(at: now + 79 * 86400))
        #expect(entry.isDue(at: now + 81 * 86400))
        #expect(!entry.isRenewalInfoDue(at: now + 5 * 3600))  // six hours without Retry-After
    }

    @Test func staleOrBackwardWindowsAreIgnored() throws {
        let now = Date()
        let certificate = try issued(lifetime: 90 * 86400, from: now)
        var entry = ManagedCertificate(ManagedName(name: "a.test", issuers: []), stored: certificate, now: now)
        let other = try issued(lifetime: 90 * 86400, from: now - 86400)
        entry.renewalInfo(.init(start: now - 10, end: now - 5), retryAfter: nil, for: other, now: now)
        #expect(!entry.isDue(at: now))
        entry.renewalInfo(.init(start: now + 10, end: now - 5), retryAfter: nil, for: certificate, now: now)
        #expect(entry.status(at: now).renewalWindow == nil)
        #expect(!entry.isDue(at: now))
    }
}
