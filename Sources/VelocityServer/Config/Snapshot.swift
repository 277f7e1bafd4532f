import Atomics
import NIOCore
import VelocityConfig
import VelocityHTTP
import VelocityQUIC
import VelocityTLS

/// Everything the data plane and the admin API's checks read, compiled from one revision. Immutable: a
/// request loads the current snapshot once and keeps it to its end.
public final class Snapshot: Sendable {
    public let revision: Int64
    public let document: JSONValue
    /// Lowercase hex SHA-256 of `document.serialized()`.
    public let sha256: String
    public let config: VelocityConfig
    public let router: Router
    public let admin: AdminPolicy
    /// The data-plane sockets this config asks for and what each speaks.
    public let listeners: [ListenerSlot: ListenerConfig.TransportProtocol]
    /// What HTTPS handshakes that start under this snapshot present.
    public let certificates: CertificateTable
    /// The handshake settings (groups, tickets) of HTTPS connections accepted under this snapshot.
    let tls: TLSServerContext
    /// The same settings for QUIC handshakes, which offer other ALPN protocols.
    let quicTLS: TLSServerContext
    /// Every upstream the config's proxies name, for `GET /upstreams`.
    let upstreams: [Upstream]
    let httpsRedirect: HTTPSRedirect
    /// `logging.access_log`, read once per request.
    let accessLog: Bool
    /// `timeouts`, read when a connection is accepted.
    let requestHeadTimeout: TimeAmount
    let idleTimeout: TimeAmount
    /// `quic.retry`, read when a QUIC connection starts.
    let quicRetry: QUICEndpoint.RetryPolicy
    /// `quic.congestion_control` and the timeouts, read when a QUIC connection starts.
    let quicSettings: ConnectionSettings

    convenience init(
        revision: Int64,
        validated: ValidatedConfig,
        sha256: String,
        admin: AdminPolicy,
        certificates: CertificateTable,
        tls: (tcp: TLSServerContext, quic: TLSServerContext),
        routing: (router: Router, upstreams: [Upstream])
    ) {
        let (router, used) = routing
        self.init(
            revision: revision, document: validated.document, sha256: sha256, config: validated.config,
            router: router, admin: admin, listeners: Self.listeners(of: validated.config),
            certificates: certificates, tls: tls.tcp, quicTLS: tls.quic, upstreams: used)
    }

    /// The sockets a config asks for; validation has made sure the addresses parse and do not collide.
    static func listeners(of config: VelocityConfig) -> [ListenerSlot: ListenerConfig.TransportProtocol] {
        Dictionary(
            (config.listeners ?? []).compactMap { listener in
                ListenAddress(listener.address).map {
                    (ListenerSlot(address: $0, isUDP: listener.protocol == .quic), listener.protocol)
                }
            }, uniquingKeysWith: { first, _ in first })
    }

    private init(
        revision: Int64,
        document: JSONValue,
        sha256: String,
        config: VelocityConfig,
        router: Router,
        admin: AdminPolicy,
        listeners: [ListenerSlot: ListenerConfig.TransportProtocol],
        certificates: CertificateTable,
        tls: TLSServerContext,
        quicTLS: TLSServerContext,
        upstreams: [Upstream]
    ) {
        self.revision = revision
        self.document = document
        self.sha256 = sha256
        self.config = config
        self.router = router
        self.admin = admin
        self.listeners = listeners
        self.certificates = certificates
        self.tls = tls
        self.quicTLS = quicTLS
        self.upstreams = upstreams
        httpsRedirect = HTTPSRedirect(listeners: config.listeners ?? [], certificates: certificates)
        accessLog = config.logging?.accessLog ?? false
        requestHeadTimeout = .milliseconds(Int64(config.timeouts?.requestHeadMs ?? TimeoutsConfig.defaultMs))
        idleTimeout = .milliseconds(Int64(config.timeouts?.idleMs ?? TimeoutsConfig.defaultMs))
        quicRetry =
            switch config.quic?.retry ?? .auto {
            case .auto: .auto
            case .always: .always
            case .never: .never
            }
        var settings = ConnectionSettings()
        settings.idleTimeout = idleTimeout
        settings.congestionControl = config.quic?.congestionControl == .newReno ? .newReno : .cubic
        settings.qlogDirectory = config.quic?.qlogDir
        // Any datagram that fits in a packet (RFC 9221 §3).
        settings.maxDatagramFrameSize = config.quic?.datagrams == true ? 65535 : 0
        quicSettings = settings
    }

    /// The same config with other certificates (an internal certificate was renewed); no new revision.
    func replacingCertificates(_ certificates: CertificateTable) -> Snapshot {
        Snapshot(
            revision: revision, document: document, sha256: sha256, config: config, router: router, admin: admin,
            listeners: listeners, certificates: certificates, tls: tls, quicTLS: quicTLS,
            upstreams: upstreams)
    }
}

extension Snapshot: AtomicReference {}

/// The one place the current snapshot lives; swapped whole, read without locks.
public final class SnapshotBox: Sendable {
    private let current: ManagedAtomic<Snapshot>

    init(_ snapshot: Snapshot) {
        current = ManagedAtomic(snapshot)
    }

    public func load() -> Snapshot {
        current.load(ordering: .acquiring)
    }

    func publish(_ snapshot: Snapshot) {
        current.store(snapshot, ordering: .releasing)
    }
}
