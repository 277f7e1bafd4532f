import Crypto
import Foundation
import Logging
import NIOCore
import VelocityStore

/// Obtains and renews the certificates of managed names in the background. A config change hands it the
/// names (``update(_:)``) and returns at once; each new certificate is stored, then `published` is awaited
/// (it swaps a snapshot that serves it), and only then does the status say valid. The old certificate serves
/// until its successor is in place. Processes sharing the store take a lock per name before ordering, and take
/// a certificate another one stored instead of ordering their own.
public actor CertificateMaintainer {
    private let storage: CertificateStorage
    private let responder: ACMEChallengeResponder
    private let group: any EventLoopGroup
    private let logger: Logger
    private let published: @Sendable () async -> Void
    private var managed: [String: ManagedCertificate] = [:]
    private var clients: [ClientKey: ACMEClient] = [:]
    /// Asks OCSP responders; made on first use.
    private var ocspHTTP: ACMEHTTPClient?
    /// This process, as the owner of the name locks it takes.
    private let owner = UUID().uuidString
    private var loop: Task<Void, Never>?
    private var sleeper: Task<Void, Never>?

    /// Orders in flight at once; more wait for the next turn of the loop.
    static let concurrentIssuances = 8
    /// Longer than any one order takes (the lock is taken again before each); a process that dies mid-order
    /// holds the name no longer than this.
    static let lockDuration: TimeInterval = 600

    private struct ClientKey: Hashable {
        var directory: String
        var email: String?
        var trustedRootsPEM: String?
    }

    public init(
        store: any Store, responder: ACMEChallengeResponder, group: any EventLoopGroup, logger: Logger,
        published: @escaping @Sendable () async -> Void
    ) {
        storage = CertificateStorage(store: store)
        self.responder = responder
        self.group = group
        self.logger = logger
        self.published = published
    }

    /// The names to keep certificates for from now on. Names dropped are forgotten (their stored certificates
    /// stay); names whose issuers changed and that were failing are tried again at once.
    public func update(_ names: [ManagedName]) {
        let now = Date()
        var next: [String: ManagedCertificate] = [:]
        for name in names {
            if var entry = managed[name.name] {
                if entry.settings != name { entry.reconfigured(name, now: now) }
                next[name.name] = entry
            } else {
                next[name.name] = ManagedCertificate(
                    name, stored: storage.certificate(for: name.name), staple: storage.staple(for: name.name),
                    now: now)
            }
        }
        managed = next
        if loop == nil, !managed.isEmpty {
            loop = Task { await self.run() }
        }
        sleeper?.cancel()
    }

    public func status() -> [CertificateStatus] {
        let now = Date()
        return managed.keys.sorted().compactMap { managed[$0]?.status(at: now) }
    }

    public func stop() {
        loop?.cancel()
        sleeper?.cancel()
        loop = nil
    }

    /// Starts what is due, then sleeps until the next thing is (or a change or a finished attempt wakes it).
    private func run() async {
        while !Task.isCancelled {
            let now = Date()
            var running = managed.values.filter(\.attempting).count
            for name in managed.keys.sorted() {
                guard var entry = managed[name] else { continue }
                if entry.isDue(at: now), running < Self.concurrentIssuances {
                    entry.started()
                    running += 1
                    let (settings, current) = (entry.settings, entry.current)
                    Task { await self.attempt(settings, replacing: current) }
                } else if entry.isRenewalInfoDue(at: now), let current = entry.current {
                    entry.checkingRenewalInfo()
                    let settings = entry.settings
                    Task { await self.checkRenewalInfo(settings, of: current) }
                } else if entry.isOCSPDue(at: now), let current = entry.current {
                    entry.fetchingOCSP()
                    Task { await self.fetchOCSP(name, of: current) }
                }
                managed[name] = entry
            }
            // A name due while every slot is taken waits for a finished attempt to wake the loop.
            let full = running >= Self.concurrentIssuances
            let next = managed.values.flatMap { entry -> [Date] in
                let checks = entry.current == nil ? [] : [entry.nextRenewalInfoCheck, entry.nextOCSPFetch]
                let waits = entry.attempting || (full && entry.isDue(at: now))
                return ([waits ? nil : entry.nextAttempt] + checks).compactMap { $0 }
            }.min()
            let delay = next.map { min(max($0.timeIntervalSince(now), 0.05), 3600) } ?? 3600
            let sleeper = Task { _ = try? await Task.sleep(for: .seconds(delay)) }
            self.sleeper = sleeper
            await sleeper.value
        }
    }

    /// Each issuer in turn, each of its challenges in turn, until one certificate is issued; under the name's
    /// lock, unless another process stored a certificate that is not due yet.
    private func attempt(_ name: ManagedName, replacing current: IssuedCertificate?) async {
        guard storage.lock(name.name, owner: owner, for: Self.lockDuration) else {
            return finished(name.name, .lockedElsewhere)
        }
        defer { storage.unlock(name.name, owner: owner) }
        if let stored = storage.certificate(for: name.name), stored != current, stored.renewalTime > Date() {
            await published()
            return finished(name.name, .adopted(stored))
        }
        var failures: [String] = []
        for issuer in name.issuers {
            let client: ACMEClient
            do {
                client = try await readyClient(for: issuer)
            } catch {
                failures.append("\(error)")
                continue
            }
            let flow = ACMEOrderFlow(client: client, responder: responder, settings: issuer)
            for type in issuer.challenges {
                // Each order gets the lock's full time, however long the ones before it took.
                _ = storage.lock(name.name, owner: owner, for: Self.lockDuration)
                do {
                    let certificate = try await flow.obtain(
                        name.name, with: type, replacing: current?.renewalInfoID)
                    try storage.save(certificate, for: name.name)
                    await published()
                    return finished(name.name, .issued(certificate))
                } catch {
                    failures.append("\(type.rawValue): \(error)")
                }
            }
        }
        finished(name.name, .failed(failures.joined(separator: "; ")))
    }

    private enum Outcome {
        case issued(IssuedCertificate)
        /// Another process had stored it.
        case adopted(IssuedCertificate)
        case failed(String)
        case lockedElsewhere
    }

    private func finished(_ name: String, _ outcome: Outcome) {
        let now = Date()
        guard var entry = managed[name] else { return }
        switch outcome {
        case .issued(let certificate):
            entry.succeeded(certificate, now: now)
            logger.info(
                "certificate obtained",
                metadata: [
                    "name": "\(name)", "issuer": "\(certificate.issuer)",
                    "not_after": "\(certificate.notAfter.formatted(.iso8601))",
                ])
        case .adopted(let certificate):
            entry.succeeded(certificate, now: now)
            logger.info("certificate taken from the store", metadata: ["name": "\(name)"])
        case .lockedElsewhere:
            entry.waited(now: now)
        case .failed(let reason):
            entry.failed(reason, now: now)
            logger.error(
                "certificate not obtained",
                metadata: [
                    "name": "\(name)", "error": "\(reason)",
                    "next_attempt": "\(entry.nextAttempt?.formatted(.iso8601) ?? "none")",
                ])
        }
        managed[name] = entry
        sleeper?.cancel()
    }

    /// Asks the CA that issued `certificate` for its renewal window (RFC 9773), when it offers ARI.
    private func checkRenewalInfo(_ name: ManagedName, of certificate: IssuedCertificate) async {
        guard let issuer = name.issuers.first(where: { $0.directoryURL == certificate.issuer }),
            let id = certificate.renewalInfoID
        else { return updateEntry(name.name) { $0.noRenewalInfo(for: certificate, retry: nil) } }
        do {
            guard let (info, retryAfter) = try await client(for: issuer).renewalInfo(for: id) else {
                return updateEntry(name.name) { $0.noRenewalInfo(for: certificate, retry: nil) }
            }
            updateEntry(name.name) {
                $0.renewalInfo(info.suggestedWindow, retryAfter: retryAfter, for: certificate, now: Date())
            }
        } catch {
            logger.warning("renewal info not fetched", metadata: ["name": "\(name.name)", "error": "\(error)"])
            updateEntry(name.name) { $0.noRenewalInfo(for: certificate, retry: Date() + 3600) }
        }
    }

    /// Asks the responder the certificate names, and publishes a staple that came, changed or went.
    private func fetchOCSP(_ name: String, of certificate: IssuedCertificate) async {
        if ocspHTTP == nil { ocspHTTP = try? ACMEHTTPClient(group: group, trustedRootsPEM: nil) }
        guard let http = ocspHTTP else { return }
        let outcome = await OCSPFetcher(http: http).fetch(chainPEM: certificate.chainPEM)
        switch outcome {
        case .refused(let reason):
            logger.warning("OCSP response not stapled", metadata: ["name": "\(name)", "reason": "\(reason)"])
        case .unavailable(let reason):
            logger.warning("OCSP responder unavailable", metadata: ["name": "\(name)", "error": "\(reason)"])
        case .good, .noResponder:
            break
        }
        let before = managed[name]?.staple
        updateEntry(name) { $0.ocspFetched(outcome, for: certificate, now: Date()) }
        guard let entry = managed[name], entry.current == certificate, entry.staple != before else { return }
        do {
            try storage.saveStaple(entry.staple, for: name)
            await published()
        } catch {
            logger.error("OCSP staple not stored", metadata: ["name": "\(name)", "error": "\(error)"])
        }
    }

    private func updateEntry(_ name: String, _ change: (inout ManagedCertificate) -> Void) {
        guard var entry = managed[name] else { return }
        change(&entry)
        managed[name] = entry
        sleeper?.cancel()
    }

    /// The client of an issuer's account, which may not exist yet.
    private func client(for issuer: ACMEIssuerSettings) throws -> ACMEClient {
        let key = ClientKey(
            directory: issuer.directoryURL, email: issuer.email, trustedRootsPEM: issuer.trustedRootsPEM)
        if let existing = clients[key] { return existing }
        let account = try storage.account(directory: issuer.directoryURL, email: issuer.email)
        let http = try ACMEHTTPClient(group: group, trustedRootsPEM: issuer.trustedRootsPEM)
        let client = ACMEClient(
            directoryURL: issuer.directoryURL, http: http,
            accountKey: try P256.Signing.PrivateKey(pemRepresentation: account.keyPEM), accountURL: account.url)
        clients[key] = client
        return client
    }

    /// The client of an issuer's account, with the account found or created (its key made and stored first).
    private func readyClient(for issuer: ACMEIssuerSettings) async throws -> ACMEClient {
        let client = try client(for: issuer)
        var account = try storage.account(directory: issuer.directoryURL, email: issuer.email)
        let url = try await client.account(
            email: issuer.email, externalAccount: issuer.externalAccount.map { ($0.keyID, $0.macKey) })
        if account.url != url {
            account.url = url
            try storage.saveAccount(account, directory: issuer.directoryURL, email: issuer.email)
        }
        return client
    }
}
