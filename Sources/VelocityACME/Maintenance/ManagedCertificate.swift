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
    /// The CA's renewal window for the current certificate (ARI), and the moment chosen in it.
    private(set) var renewalWindow: RenewalInfo.Window?
    private var chosenRenewal: Date?
    /// When to ask the CA for renewal info next; nil while asking, and when there is nothing to ask about.
    private(set) var nextRenewalInfoCheck: Date?
    /// The OCSP response stapled with the current certificate, what the last fetch said, and when to fetch
    /// next (nil while fetching, and when the certificate names no responder).
    private(set) var staple: OCSPStaple?
    private(set) var ocspStatus: String?
    private(set) var nextOCSPFetch: Date?

    init(_ settings: ManagedName, stored: IssuedCertificate?, staple: OCSPStaple? = nil, now: Date) {
        self.settings = settings
        if let stored, stored.notAfter > now {
            current = stored
            nextRenewalInfoCheck = now
            if let staple, let leaf = stored.leafDER, staple.isUsable(for: leaf, at: now) {
                self.staple = staple
                ocspStatus = "good"
                nextOCSPFetch = max(now, staple.refreshTime)
            } else {
                nextOCSPFetch = now
            }
        }
        schedule(now: now)
    }

    /// When the current certificate is to be renewed: at the moment chosen in the CA's window, else with a
    /// third of its lifetime left.
    var renewalTime: Date? {
        chosenRenewal ?? current?.renewalTime
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
        renewalWindow = nil
        chosenRenewal = nil
        nextRenewalInfoCheck = now
        staple = nil
        ocspStatus = nil
        nextOCSPFetch = now
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

    func isRenewalInfoDue(at now: Date) -> Bool {
        current != nil && nextRenewalInfoCheck.map { $0 <= now } ?? false
    }

    mutating func checkingRenewalInfo() {
        nextRenewalInfoCheck = nil
    }

    /// The CA's window for `certificate` (still the current one, or the answer is stale): a new window gets a
    /// new moment; the CA's Retry-After, between a minute and a day (six hours without one), says when to ask
    /// again.
    mutating func renewalInfo(
        _ window: RenewalInfo.Window, retryAfter: TimeInterval?, for certificate: IssuedCertificate, now: Date
    ) {
        guard certificate == current else { return }
        guard window.start <= window.end else {
            nextRenewalInfoCheck = now + 3600  // a window that ends before it starts is no advice
            return
        }
        if window != renewalWindow {
            renewalWindow = window
            chosenRenewal = RenewalInfo.moment(in: window)
        }
        nextRenewalInfoCheck = now + min(max(retryAfter ?? 6 * 3600, 60), 86400)
        if !attempting, failures == 0 { schedule(now: now) }
    }

    /// No renewal info to be had for `certificate` (its CA offers none): only the usual schedule applies.
    /// `retry` is when to try again after a failure to ask.
    mutating func noRenewalInfo(for certificate: IssuedCertificate, retry: Date?) {
        guard certificate == current else { return }
        nextRenewalInfoCheck = retry
    }

    func isOCSPDue(at now: Date) -> Bool {
        current != nil && nextOCSPFetch.map { $0 <= now } ?? false
    }

    mutating func fetchingOCSP() {
        nextOCSPFetch = nil
    }

    /// What asking the OCSP responder about `certificate` (still the current one, or the answer is stale) gave:
    /// a good response is stapled until half its validity has passed; a refused one is never stapled; while the
    /// responder cannot be reached, a staple still valid is kept.
    mutating func ocspFetched(_ outcome: OCSPFetcher.Outcome, for certificate: IssuedCertificate, now: Date) {
        guard certificate == current else { return }
        switch outcome {
        case .noResponder:
            (staple, ocspStatus, nextOCSPFetch) = (nil, nil, nil)
        case .good(let fresh):
            (staple, ocspStatus, nextOCSPFetch) = (fresh, "good", max(fresh.refreshTime, now + 60))
        case .refused(let reason):
            (staple, ocspStatus, nextOCSPFetch) = (nil, "not stapled: \(reason)", now + 3600)
        case .unavailable(let reason):
            if let kept = staple, kept.expiry <= now { staple = nil }
            (ocspStatus, nextOCSPFetch) = ("responder unavailable: \(reason)", now + 600)
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
            nextAttempt = max(now, chosenRenewal ?? RetrySchedule.renewal(of: current))
        } else {
            nextAttempt = now
        }
    }

    func status(at now: Date) -> CertificateStatus {
        CertificateStatus(
            name: settings.name, state: state(at: now), issuer: current?.issuer, notAfter: current?.notAfter,
            renewalTime: renewalTime, renewalWindow: renewalWindow.map { $0.start...$0.end }, lastError: lastError,
            nextAttempt: attempting ? nil : nextAttempt, ocsp: ocspStatus, ocspNextUpdate: staple?.nextUpdate)
    }
}
