import Logging
import NIOCore
import VelocityACME
import VelocityConfig
import VelocityHTTP
import VelocityStore
import VelocityTLS

/// Why a config change was not made. In every case the store and the running config are unchanged.
enum ChangeError: Error {
    /// `If-Match` named a revision that is no longer the latest.
    case stale(current: Int64)
    case edit(JSONEditError)
    case invalid(ConfigError)
    /// A new listener address could not be bound.
    case listen(ListenError)
    case store(any Error)
}

/// The one writer of config: decode → validate → compile → bind new sockets → commit → publish → close
/// dropped sockets. Changes run strictly one after another; any failure before the commit undoes what the
/// change had started, so nothing is half-applied.
actor ConfigCoordinator {
    enum Outcome {
        case applied(Snapshot)
        case unchanged(Snapshot)
    }

    typealias AdminBinder = @Sendable (ListenAddress) async throws -> any Channel

    let store: any Store
    let snapshots: SnapshotBox
    /// The `--admin` flag: when set, the config's `admin.listen` is not used by this process.
    private let adminOverride: ListenAddress?
    private(set) var adminAddress: ListenAddress
    private var admin: (channel: any Channel, bind: AdminBinder)?
    private let listeners: ListenerSet
    private let certificates: CertificateManager
    private let tlsContexts: TLSContexts
    private let upstreams: UpstreamRegistry
    private let group: any EventLoopGroup
    /// Obtains and renews ACME certificates; started by ``startCertificateMaintenance()``.
    private var maintainer: CertificateMaintainer?
    /// The managed names of the live config, for the maintainer.
    private var managed: [ManagedName]
    private let logger: Logger
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// Opens the data-plane listeners of `initial`, which must already be committed, and publishes it.
    init(
        store: any Store,
        initial: Revision,
        adminOverride: ListenAddress?,
        group: any EventLoopGroup,
        logger: Logger
    ) async throws {
        let adminAddress = ConfigValidator.adminAddress(of: initial.document, override: adminOverride)
        let validated = try ConfigValidator.validate(
            initial.document, context: ValidationContext(adminAddress: adminAddress))
        let certificates = CertificateManager(store: store)
        let tlsContexts = TLSContexts()
        let upstreams = UpstreamRegistry(group: group)
        let (table, managed) = try certificates.table(for: validated.config)
        let snapshot = Snapshot(
            revision: initial.number, validated: validated, sha256: initial.summary.sha256,
            admin: AdminPolicy(config: validated.config.admin, address: adminAddress),
            certificates: table,
            tls: try tlsContexts.contexts(for: validated.config), routing: try upstreams.router(for: validated.config))
        upstreams.commit()
        let box = SnapshotBox(snapshot)
        LogOutput.apply(validated.config.logging)
        tlsContexts.applied(validated.config)
        let listeners = ListenerSet(group: group, snapshots: box)
        _ = try await listeners.bindMissing(snapshot.listeners)
        self.store = store
        self.snapshots = box
        self.adminOverride = adminOverride
        self.adminAddress = adminAddress
        self.listeners = listeners
        self.certificates = certificates
        self.tlsContexts = tlsContexts
        self.upstreams = upstreams
        self.group = group
        self.managed = managed
        self.logger = logger
    }

    /// Starts obtaining the certificates of managed names in the background.
    func startCertificateMaintenance() async {
        let maintainer = CertificateMaintainer(
            store: store, responder: certificates.challenges, group: group, logger: logger
        ) { [weak self] in
            await self?.refreshCertificates()
        }
        self.maintainer = maintainer
        await maintainer.update(managed)
    }

    /// Opens the admin API's socket; `bind` is kept to move it when a config changes `admin.listen`.
    func startAdmin(_ bind: @escaping AdminBinder) async throws {
        admin = (try await bind(adminAddress), bind)
    }

    func validationContext(for document: JSONValue) -> ValidationContext {
        ValidationContext(adminAddress: ConfigValidator.adminAddress(of: document, override: adminOverride))
    }

    /// Applies `edit` to the current document as one change.
    func change(
        source: RevisionSource,
        who: String,
        ifMatch: Int64? = nil,
        force: Bool = false,
        _ edit: @Sendable (JSONValue) throws -> JSONValue
    ) async throws(ChangeError) -> Outcome {
        await acquire()
        defer { release() }
        let current = snapshots.load()
        if let ifMatch, ifMatch != current.revision { throw .stale(current: current.revision) }
        let document: JSONValue
        let newAdminAddress: ListenAddress
        let validated: ValidatedConfig
        do {
            document = try edit(current.document)
            newAdminAddress = ConfigValidator.adminAddress(of: document, override: adminOverride)
            validated = try ConfigValidator.validate(
                document, context: ValidationContext(adminAddress: newAdminAddress))
        } catch let error as JSONEditError {
            throw .edit(error)
        } catch let error as ConfigError {
            throw .invalid(error)
        } catch {
            throw .invalid(ConfigError(at: .root, "\(error)"))
        }
        let sha256 = Digest.sha256Hex(document)
        if sha256 == current.sha256, !force { return .unchanged(current) }

        let policy = AdminPolicy(config: validated.config.admin, address: newAdminAddress)
        let table: CertificateTable
        let managed: [ManagedName]
        let tls: (tcp: TLSServerContext, quic: TLSServerContext)
        let routing: (router: Router, upstreams: [Upstream])
        do {
            (table, managed) = try certificates.table(for: validated.config)
            tls = try tlsContexts.contexts(for: validated.config)
            routing = try upstreams.router(for: validated.config)
        } catch let error as ConfigError {
            throw .invalid(error)
        } catch {
            throw .store(error)
        }
        let opened: [ListenerSlot]
        do {
            opened = try await listeners.bindMissing(Snapshot.listeners(of: validated.config))
        } catch {
            await restoreListeners(current, closing: [])
            throw .listen(error)
        }
        var newAdminChannel: (any Channel)?
        if newAdminAddress != adminAddress, let admin {
            do {
                newAdminChannel = try await admin.bind(newAdminAddress)
            } catch {
                await restoreListeners(current, closing: opened)
                throw .listen(ListenError(address: newAdminAddress, underlying: error))
            }
        }
        let revision: Revision
        do {
            revision = try store.commit(
                RevisionDraft(document: document, sha256: sha256, source: source, who: who), basedOn: current.revision)
        } catch {
            await restoreListeners(current, closing: opened)
            try? await newAdminChannel?.close()
            throw .store(error)
        }
        let snapshot = Snapshot(
            revision: revision.number, validated: validated, sha256: sha256, admin: policy, certificates: table,
            tls: tls, routing: routing)
        snapshots.publish(snapshot)
        upstreams.commit()
        LogOutput.apply(validated.config.logging)
        tlsContexts.applied(validated.config)
        self.managed = managed
        // Issuance runs in the background: the change is answered without waiting for any certificate.
        await maintainer?.update(managed)
        await listeners.closeUnwanted(snapshot.listeners)
        if let newAdminChannel, let admin {
            // The request that made this change is answered on its own connection, which stays open.
            try? await admin.channel.close()
            self.admin = (newAdminChannel, admin.bind)
            adminAddress = newAdminAddress
        }
        logger.info(
            "config applied",
            metadata: ["revision": "\(revision.number)", "source": "\(source.rawValue)", "who": "\(who)"])
        return .applied(snapshot)
    }

    /// Undoes a change's listener work: closes what it opened and reopens any socket of `current` it
    /// replaced (an address whose protocol changed), so a failed change leaves the listeners as they were.
    private func restoreListeners(_ current: Snapshot, closing opened: [ListenerSlot]) async {
        await listeners.close(opened)
        do {
            _ = try await listeners.bindMissing(current.listeners)
        } catch {
            logger.error("could not reopen a listener after a failed change", metadata: ["error": "\(error)"])
        }
    }

    /// Reissues the internal certificate when it nears expiry and publishes it in a snapshot of the same
    /// revision; new handshakes present it, open connections keep theirs.
    func renewCertificatesIfDue() async {
        guard certificates.leafNeedsRenewal() else { return }
        await acquire()
        defer { release() }
        let current = snapshots.load()
        do {
            snapshots.publish(current.replacingCertificates(try certificates.table(for: current.config).0))
            logger.info("internal certificate renewed", metadata: ["revision": "\(current.revision)"])
        } catch {
            logger.error("internal certificate renewal failed", metadata: ["error": "\(error)"])
        }
    }

    /// Publishes the certificates in the store (an ACME certificate was obtained) in a snapshot of the same
    /// revision: new handshakes present them, open connections keep theirs.
    func refreshCertificates() async {
        await acquire()
        defer { release() }
        let current = snapshots.load()
        do {
            snapshots.publish(current.replacingCertificates(try certificates.table(for: current.config).0))
        } catch {
            logger.error("certificates not refreshed", metadata: ["error": "\(error)"])
        }
    }

    /// The state of every managed name, for `GET /certificates`.
    func managedCertificates() async -> [CertificateStatus] {
        await maintainer?.status() ?? []
    }

    /// The internal CA's root certificate (created on first use).
    func rootCertificatePEM() throws -> String {
        try certificates.rootCertificatePEM()
    }

    /// Closes the admin socket and every data-plane listener; connections still open finish on their own.
    func shutdown() async {
        try? await admin?.channel.close()
        admin = nil
        await maintainer?.stop()
        await listeners.closeUnwanted([:])
        upstreams.shutdown()
    }

    private func acquire() async {
        if busy {
            await withCheckedContinuation { waiting.append($0) }
        } else {
            busy = true
        }
    }

    private func release() {
        if waiting.isEmpty {
            busy = false
        } else {
            waiting.removeFirst().resume()
        }
    }
}
