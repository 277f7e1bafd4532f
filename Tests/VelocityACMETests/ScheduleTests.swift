import Foundation
import Testing

@testable import VelocityACME

@Suite struct ScheduleTests {
    private func certificate(lifetime: TimeInterval, from start: Date = Date()) -> IssuedCertificate {
        var certificate = try! IssuedCertificate(
            chainPEM: try! TLSALPNCertificate.make(name: "a.test", keyAuthorization: "x").certificatePEM,
            privateKeyPEM: "", issuer: "https://ca.test/dir")
        certificate.notBefore = start
        certificate.notAfter = start + lifetime
        return certificate
    }

    @Test func backoffDoublesFromAMinuteToSixHours() {
        let delays = (1...12).map { RetrySchedule.backoff(afterFailures: $0, random: 0) }
        #expect(delays.prefix(5) == [60, 120, 240, 480, 960])
        #expect(delays.last == RetrySchedule.maximumBackoff)
        #expect(RetrySchedule.backoff(afterFailures: 1, random: 0.999) > 54)
    }

    @Test func renewalIsDueWithAThirdOfTheLifetimeLeft() {
        let start = Date(timeIntervalSince1970: 1_000_000)
        let certificate = certificate(lifetime: 90 * 86400, from: start)
        #expect(certificate.renewalTime == start + 60 * 86400)
        #expect(RetrySchedule.renewal(of: certificate, random: 0) == start + 60 * 86400)
        // Jitter only ever renews earlier, by at most 30 minutes.
        #expect(RetrySchedule.renewal(of: certificate, random: 0.999) > start + 60 * 86400 - 1800)
    }

    @Test func aNameWithoutCertificateIsPendingThenErrorThenValid() {
        let now = Date()
        let name = ManagedName(name: "a.test", issuers: [])
        var entry = ManagedCertificate(name, stored: nil, now: now)
        #expect(entry.state(at: now) == .pending)
        #expect(entry.isDue(at: now))
        entry.started()
        #expect(!entry.isDue(at: now))
        #expect(entry.status(at: now).nextAttempt == nil)
        entry.failed("ca.test: connection refused", now: now)
        #expect(entry.state(at: now) == .error)
        #expect(entry.status(at: now).lastError == "ca.test: connection refused")
        #expect(!entry.isDue(at: now + 50))
        #expect(entry.isDue(at: now + 61))
        entry.started()
        entry.failed("again", now: now)
        #expect(!entry.isDue(at: now + 100))
        let issued = certificate(lifetime: 90, from: now)
        entry.started()
        entry.succeeded(issued, now: now)
        #expect(entry.state(at: now) == .valid)
        #expect(entry.status(at: now).lastError == nil)
        #expect(!entry.isDue(at: now + 58))
        #expect(entry.isDue(at: now + 60))
    }

    @Test func aFailingRenewalKeepsServingAndSaysWhy() {
        let now = Date()
        var entry = ManagedCertificate(
            ManagedName(name: "a.test", issuers: []), stored: certificate(lifetime: 300, from: now - 250), now: now)
        #expect(entry.isDue(at: now))
        entry.started()
        entry.failed("rate limited", now: now)
        #expect(entry.state(at: now) == .valid)
        #expect(entry.status(at: now).lastError == "rate limited")
        #expect(entry.state(at: now + 60) == .error)
    }

    @Test func aNameNoIssuerCanServeWaitsForTheConfig() {
        let now = Date()
        var entry = ManagedCertificate(
            ManagedName(name: "a.test", issuers: [], problem: "no listener"), stored: nil, now: now)
        #expect(entry.state(at: now) == .error)
        #expect(!entry.isDue(at: now + 1e6))
        entry.reconfigured(ManagedName(name: "a.test", issuers: []), now: now)
        #expect(entry.isDue(at: now))
        #expect(entry.state(at: now) == .pending)
    }
}

extension ScheduleTests {
    @Test func aFailureUnderOldSettingsIsRetriedAtOnceWithTheNewOnes() {
        let now = Date()
        var entry = ManagedCertificate(ManagedName(name: "a.test", issuers: []), stored: nil, now: now)
        entry.started()
        let issuer = ACMEIssuerSettings(
            directoryURL: "https://ca.test/dir", email: nil, externalAccount: nil, challenges: [.http01],
            keyType: .p256, trustedRootsPEM: nil)
        entry.reconfigured(ManagedName(name: "a.test", issuers: [issuer]), now: now)
        entry.failed("unreachable", now: now)
        #expect(entry.isDue(at: now))
        #expect(entry.state(at: now) == .error)
    }
}
