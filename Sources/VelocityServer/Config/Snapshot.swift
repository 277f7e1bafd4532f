import Atomics
import VelocityConfig
import VelocityHTTP

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
    public let httpListeners: Set<ListenAddress>

    init(revision: Int64, validated: ValidatedConfig, sha256: String, admin: AdminPolicy) {
        self.revision = revision
        document = validated.document
        self.sha256 = sha256
        config = validated.config
        router = Router(config: validated.config)
        self.admin = admin
        httpListeners = Set(
            (validated.config.listeners ?? []).filter { $0.protocol == .http }.compactMap { ListenAddress($0.address) })
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
