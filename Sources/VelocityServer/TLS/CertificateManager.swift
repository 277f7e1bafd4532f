import Foundation
import Logging
import VelocityACME
import VelocityConfig
import VelocityStore
import VelocityTLS

/// Builds each snapshot's ``CertificateTable``: the certificates the config lists, then those ACME issued for
/// managed names (see ``AutomationPlan``), then one leaf from the internal CA for every name no public CA can
/// certify (`localhost`, IP addresses, `*.internal`, …) and every name a policy gives it. The CA's root lives in
/// the store, so the certificate people trust survives restarts; leaves are reissued when they reach the last
/// third of their lifetime. Used only by the ``ConfigCoordinator``, one change at a time.
final class CertificateManager {
    private let store: any Store
    private let storage: CertificateStorage
    /// Answers ACME challenges for every snapshot's table.
    let challenges: ACMEChallengeResponder
    private let logger = Logger(label: "velocity.certificates")
    private var authority: InternalCA?
    private var leaf: (names: [String], bundle: CertificateBundle, credential: TLSCredential)?
    /// Credentials of ACME certificates by name, rebuilt only when the stored certificate or staple changes.
    private var issued: [String: (certificate: IssuedCertificate, staple: OCSPStaple?, credential: TLSCredential)] =
        [:]

    static let leafLifetime: TimeInterval = 7 * 24 * 3600
    /// Names the default certificate always covers, so `https://localhost` and `https://127.0.0.1` work.
    static let loopbackNames = ["localhost", "127.0.0.1", "::1"]

    init(store: any Store) {
        self.store = store
        storage = CertificateStorage(store: store)
        challenges = ACMEChallengeResponder(store: store)
    }

    /// The root certificate people install to trust Velocity's internal certificates.
    func rootCertificatePEM() throws -> String {
        try internalCA().certificatePEM
    }

    /// The certificates for `config`. Listed certificates are always loaded, so a bad one is refused when it
    /// is written, not later when an HTTPS listener appears; internal ones only when there is a listener to
    /// present them. Errors name the config entry.
    /// Also the names ACME should keep certificates for, to hand to the ``CertificateMaintainer`` once the
    /// config is live. Those without a stored certificate yet are the table's pending names.
    func table(for config: VelocityConfig, now: Date = Date()) throws -> (CertificateTable, managed: [ManagedName]) {
        let configured = try (config.tls?.certificates ?? []).enumerated().map { index, entry in
            try Self.credential(entry, at: JSONPointer(tokens: ["tls", "certificates", String(index)]))
        }
        guard (config.listeners ?? []).contains(where: { $0.protocol != .http }) else {
            return (CertificateTable(configured), [])
        }
        let configuredNames = CertificateTable(configured)
        let plan = try AutomationPlan(config: config, configured: configuredNames)
        let managedNames = Set(plan.acme.map(\.name))
        var obtained: [TLSCredential] = []
        var pending = Set<String>()
        for name in plan.acme.map(\.name) {
            if let credential = issuedCredential(for: name, now: now) {
                obtained.append(credential)
            } else {
                pending.insert(name)
            }
        }
        issued = issued.filter { managedNames.contains($0.key) }
        let automatic = (Self.automaticNames(config) + plan.internalNames).filter {
            !configuredNames.covers(Substring($0))
        }
        var internalLeaf: TLSCredential?
        if !automatic.isEmpty {
            do {
                internalLeaf = try self.internalLeaf(for: automatic, now: now)
            } catch InternalCAError.invalidName(let name, let reason) {
                throw ConfigError(
                    at: Self.pointer(ofHost: name, in: config),
                    "the internal CA cannot certify \"\(name)\": \(reason)")
            }
        }
        let table = CertificateTable(
            configured + obtained + (internalLeaf.map { [$0] } ?? []), default: internalLeaf,
            acmeChallenges: challenges, managedNames: managedNames, pendingNames: pending)
        return (table, plan.acme)
    }

    /// The stored ACME certificate of `name` while it is valid, with its OCSP staple while that is valid for
    /// it; parsed once per certificate and staple.
    private func issuedCredential(for name: String, now: Date) -> TLSCredential? {
        guard let certificate = storage.certificate(for: name), certificate.notAfter > now else {
            issued[name] = nil
            return nil
        }
        let staple = storage.staple(for: name).flatMap { staple in
            certificate.leafDER.map { staple.isUsable(for: $0, at: now) } == true ? staple : nil
        }
        if let cached = issued[name], cached.certificate == certificate, cached.staple == staple {
            return cached.credential
        }
        do {
            let credential = try TLSCredential(
                certificateChainPEM: certificate.chainPEM, privateKeyPEM: certificate.privateKeyPEM,
                ocspResponse: staple.map { Array($0.response) })
            issued[name] = (certificate, staple, credential)
            return credential
        } catch {
            logger.error("stored certificate unusable", metadata: ["name": "\(name)", "error": "\(error)"])
            return nil
        }
    }

    /// Whether the internal leaf should be reissued: it is in the last third of its lifetime.
    func leafNeedsRenewal(now: Date = Date()) -> Bool {
        guard let leaf else { return false }
        return now >= leaf.bundle.notAfter - Self.leafLifetime / 3
    }

    private func internalLeaf(for names: [String], now: Date) throws -> TLSCredential {
        if let leaf, leaf.names == names, now < leaf.bundle.notAfter - Self.leafLifetime / 3 {
            return leaf.credential
        }
        let bundle = try internalCA().issue(for: names, now: now, lifetime: Self.leafLifetime)
        let credential = try TLSCredential(
            certificateChainPEM: bundle.certificateChainPEM, privateKeyPEM: bundle.privateKeyPEM)
        leaf = (names, bundle, credential)
        return credential
    }

    private func internalCA() throws -> InternalCA {
        if let authority { return authority }
        let loaded = try Self.loadOrCreateAuthority(in: store)
        authority = loaded
        return loaded
    }

    /// The CA whose root the store keeps, made and stored on first use.
    static func loadOrCreateAuthority(in store: any Store) throws -> InternalCA {
        if let certificate = try store.record("pki", key: "root.crt"),
            let key = try store.record("pki", key: "root.key")
        {
            return try InternalCA(
                certificatePEM: String(decoding: certificate, as: UTF8.self),
                privateKeyPEM: String(decoding: key, as: UTF8.self))
        }
        let created = try InternalCA.create()
        try store.setRecord("pki", key: "root.key", value: Data(created.privateKeyPEM.utf8))
        try store.setRecord("pki", key: "root.crt", value: Data(created.certificatePEM.utf8))
        return created
    }

    /// Site hosts the internal CA may certify (all of a site marked `tls.internal`), plus loopback names and
    /// the IPs HTTPS and QUIC listeners bind to.
    private static func automaticNames(_ config: VelocityConfig) -> [String] {
        var names = loopbackNames
        for listener in config.listeners ?? [] where listener.protocol != .http {
            if case .inet(let host, _)? = ListenAddress(listener.address), !host.isEmpty, host != "0.0.0.0",
                host != "::"
            {
                names.append(host.lowercased())
            }
        }
        for site in config.sites ?? [] {
            let hosts = (site.hosts ?? []).map { $0.lowercased() }
            names += site.tls?.internal == true ? hosts : hosts.filter(InternalCA.coversAutomatically)
        }
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }

    /// Where a host name the internal CA refused stands in the config.
    private static func pointer(ofHost name: String, in config: VelocityConfig) -> JSONPointer {
        for (siteIndex, site) in (config.sites ?? []).enumerated() {
            if let hostIndex = (site.hosts ?? []).firstIndex(where: { $0.lowercased() == name }) {
                return JSONPointer(tokens: ["sites", String(siteIndex), "hosts", String(hostIndex)])
            }
        }
        return JSONPointer(tokens: ["listeners"])
    }

    private static func credential(_ entry: CertificateConfig, at pointer: JSONPointer) throws -> TLSCredential {
        func read(_ path: String?, _ member: String) throws -> Data? {
            guard let path else { return nil }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigError(at: pointer.appending(member), "cannot read \(path)")
            }
            return data
        }
        let certificate =
            try entry.certificatePEM ?? read(entry.certificateFile, "certificate_file").map {
                String(decoding: $0, as: UTF8.self)
            } ?? ""
        let key = try entry.keyPEM ?? read(entry.keyFile, "key_file").map { String(decoding: $0, as: UTF8.self) } ?? ""
        let staple = try read(entry.ocspStapleFile, "ocsp_staple_file").map { Array($0) }
        if let staple, staple.first != 0x30 {
            throw ConfigError(at: pointer.appending("ocsp_staple_file"), "not a DER-encoded OCSP response")
        }
        do {
            return try TLSCredential(certificateChainPEM: certificate, privateKeyPEM: key, ocspResponse: staple)
        } catch {
            throw ConfigError(at: pointer, error.description)
        }
    }
}
