import Foundation

/// The state of one managed name: the certificate it has, the failures since the last success, and when to act
/// next. A value: the ``CertificateMaintainer`` changes it only through these transitions.
struct ManagedCertificate {
    var settings: ManagedName
    private(set) var current: IssuedCertificate?
    private(set) var failures = 0
    private(set) var lastError: String?
    /// Nil: nothing to do until the config changes.
    private(set) var nextAttempt: Date?
    /// The settings of the attempt in progress; nil when none is.
    private var attempted: ManagedName?
    var attempting: Bool { attempted != nil }

    init(_ settings: ManagedName, stored: IssuedCertificate?, now: Date) {
        self.settings = settings
        if let stored, stored.notAfter > now { current = stored }
        schedule(now: now)
    }

    func state(at now: Date) -> CertificateStatus.State {
        if let current, current.notAfter > now { return .valid }
        return lastError == nil ? .pending : .error
    }

    func isDue(at now: Date) -> Bool {
        !attempting && nextAttempt.map { $0 <= now } ?? false
    }

    mutating func started() {
        attempted = settings
    }

    mutating func succeeded(_ certificate: IssuedCertificate, now: Date) {
        attempted = nil
        current = certificate
        failures = 0
        lastError = nil
        schedule(now: now)
    }

    mutating func failed(_ reason: String, now: Date) {
        let outdated = attempted != settings
        attempted = nil
        lastError = reason
        if outdated {
            // The config changed while the attempt ran: the new settings get their own try at once.
            failures = 0
            nextAttempt = now
        } else {
            failures += 1
            nextAttempt = now + RetrySchedule.backoff(afterFailures: failures)
        }
    }

    /// Another process is ordering this name: look again shortly (its certificate may be in the store by
    /// then), without counting a failure.
    mutating func waited(now: Date) {
        attempted = nil
        nextAttempt = now + RetrySchedule.lockWait
    }

    /// The config changed this name's issuers: a failing name is tried again at once.
    mutating func reconfigured(_ settings: ManagedName, now: Date) {
        self.settings = settings
        failures = 0
        lastError = nil
        if !attempting { schedule(now: now) }
    }

    private mutating func schedule(now: Date) {
        if let problem = settings.problem {
            lastError = problem
            nextAttempt = nil
        } else if let current {
            nextAttempt = max(now, RetrySchedule.renewal(of: current))
        } else {
            nextAttempt = now
        }
    }

    func status(at now: Date) -> CertificateStatus {
        CertificateStatus(
            name: settings.name, state: state(at: now), issuer: current?.issuer, notAfter: current?.notAfter,
            renewalTime: current?.renewalTime, lastError: lastError, nextAttempt: attempting ? nil : nextAttempt)
    }
}
