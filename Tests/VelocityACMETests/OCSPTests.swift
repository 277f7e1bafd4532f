import Foundation
import Testing

@testable import VelocityACME

@Suite struct OCSPTests {
    /// Good responses made with Python's `cryptography` (thisUpdate 2030-01-02T03:04:05Z), one with a nextUpdate
    /// four hours later and one without.
    static let withNextUpdate = """
        MIH7CgEAoIH1MIHyBgkrBgEFBQcwAQEEgeQwgeEwgYihDjAMMQowCAYDVQQDDAF0GA8yMDI2MTEyNzIyNTA0MlowZTBjMDswCQYFKw4DAhoF\
        AAQUdrO29Ajkp/AAa0MCEVleF61hrQ8EFLN98UQ/YLU6zvqUJ2KuQc2Jv2fJAgIE0oAAGA8yMDMwMDEwMjAzMDQwNVqgERgPMjAzMDAxMDIw\
        NzA0MDVaMAoGCCqGSM49BAMCA0gAMEUCIAewyqHRJdYvT/5Nb6GaIiQn7ycwVm9+bBUzoBaxUvy0AiEA3EPrsH3k3jId2o9V8tBy6sQR8pvo\
        iK22lxpjPcbg5W0=
        """
    static let withoutNextUpdate = """
        MIHnCgEAoIHhMIHeBgkrBgEFBQcwAQEEgdAwgc0wdaEOMAwxCjAIBgNVBAMMAXQYDzIwMjYxMTI3MjI1MDQyWjBSMFAwOzAJBgUrDgMCGgUA\
        BBR2s7b0COSn8ABrQwIRWV4XrWGtDwQUs33xRD9gtTrO+pQnYq5BzYm/Z8kCAgTSgAAYDzIwMzAwMTAyMDMwNDA1WjAKBggqhkjOPQQDAgNI\
        ADBFAiBKMbcb3KwRkL0Grlr58UUao9V2JUPAcuLss/cs6mq2EAIhAPhBUBhyDJA039+khJ8SKrt2BoT2zVf+EmsvDht8PbBY
        """
    static let thisUpdate = Date(timeIntervalSince1970: 1_893_553_445)

    private func staple(_ base64: String, leaf: [UInt8] = [1, 2, 3]) throws -> OCSPStaple {
        try OCSPStaple(response: Array(try #require(Data(base64Encoded: base64))), leafDER: leaf)
    }

    @Test func theTimesAreReadAndTheRefreshIsHalfWay() throws {
        let staple = try staple(Self.withNextUpdate)
        #expect(staple.thisUpdate == Self.thisUpdate)
        #expect(staple.nextUpdate == Self.thisUpdate + 4 * 3600)
        #expect(staple.refreshTime == Self.thisUpdate + 2 * 3600)
        let open = try self.staple(Self.withoutNextUpdate)
        #expect(open.nextUpdate == nil)
        #expect(open.expiry == Self.thisUpdate + 86400)
    }

    @Test func aStapleServesOnlyItsOwnCertificateAndOnlyWhileValid() throws {
        let staple = try staple(Self.withNextUpdate, leaf: [1, 2, 3])
        #expect(staple.isUsable(for: [1, 2, 3], at: Self.thisUpdate + 3600))
        #expect(!staple.isUsable(for: [1, 2, 4], at: Self.thisUpdate + 3600))
        #expect(!staple.isUsable(for: [1, 2, 3], at: Self.thisUpdate + 5 * 3600))
    }

    @Test func somethingElseIsNotAResponse() {
        #expect(throws: (any Error).self) { try OCSPStaple(response: [0x30, 0x03, 0x0A, 0x01, 0x00], leafDER: []) }
    }

    @Test func aRefusedResponseDropsTheStapleAndAnOutageKeepsAValidOne() throws {
        let made = try TLSALPNCertificate.make(name: "a.test", keyAuthorization: "x")
        let certificate = try IssuedCertificate(
            chainPEM: made.certificatePEM, privateKeyPEM: made.privateKeyPEM, issuer: "https://ca.test/dir")
        let leaf = try #require(certificate.leafDER)
        let now = Self.thisUpdate + 600
        var entry = ManagedCertificate(ManagedName(name: "a.test", issuers: []), stored: nil, now: now)
        entry.succeeded(certificate, now: now)
        #expect(entry.isOCSPDue(at: now))
        entry.fetchingOCSP()
        let good = try staple(Self.withNextUpdate, leaf: leaf)
        entry.ocspFetched(.good(good), for: certificate, now: now)
        #expect(entry.staple == good)
        #expect(!entry.isOCSPDue(at: Self.thisUpdate + 7199))
        #expect(entry.isOCSPDue(at: Self.thisUpdate + 7200))

        entry.ocspFetched(.unavailable("connection refused"), for: certificate, now: now)
        #expect(entry.staple == good)
        #expect(entry.status(at: now).ocsp == "responder unavailable: connection refused")
        entry.ocspFetched(.refused("revoked through OCSP"), for: certificate, now: now)
        #expect(entry.staple == nil)
        #expect(entry.status(at: now).ocsp == "not stapled: revoked through OCSP")
        entry.ocspFetched(.noResponder, for: certificate, now: now)
        #expect(entry.status(at: now).ocsp == nil)
        #expect(!entry.isOCSPDue(at: now + 1e6))
    }
}
