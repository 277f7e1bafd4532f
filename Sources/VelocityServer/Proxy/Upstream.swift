import Atomics
import NIOCore
import Synchronization
import VelocityConfig
import VelocityHTTP

/// One upstream server, shared by every config that names its address: its idle connections (one pool per
/// event loop, so taking one needs no lock), its counters, and its passive health.
final class Upstream: ProxyUpstream {
    let key: String
    let address: ListenAddress
    private let pools: [ObjectIdentifier: ConnectionPool]

    private let inFlightCount = ManagedAtomic<Int>(0)
    private let requestCount = ManagedAtomic<Int>(0)
    private let failCount = ManagedAtomic<Int>(0)
    private let lastLatencyNanoseconds = ManagedAtomic<Int>(0)
    /// Uptime nanoseconds until which the upstream is skipped; read on every selection, so an atomic.
    private let unhealthyUntil = ManagedAtomic<UInt64>(0)
    /// Recent failure times, touched only when a request fails.
    private let failures = Mutex<[UInt64]>([])

    init(key: String, address: ListenAddress, loops: [any EventLoop]) {
        self.key = key
        self.address = address
        pools = Dictionary(uniqueKeysWithValues: loops.map { (ObjectIdentifier($0), ConnectionPool(eventLoop: $0)) })
    }

    deinit {
        for pool in pools.values { pool.closeAll() }
    }

    var isAvailable: Bool { NIODeadline.now().uptimeNanoseconds >= unhealthyUntil.load(ordering: .relaxed) }
    var inFlight: Int { inFlightCount.load(ordering: .relaxed) }

    /// The idle connections kept for `eventLoop`.
    func pool(for eventLoop: any EventLoop) -> ConnectionPool {
        pools[ObjectIdentifier(eventLoop)]!
    }

    func started() {
        inFlightCount.wrappingIncrement(ordering: .relaxed)
        requestCount.wrappingIncrement(ordering: .relaxed)
    }

    /// The response's head arrived this long after the request went out.
    func answered(latency: TimeAmount) {
        lastLatencyNanoseconds.store(Int(latency.nanoseconds), ordering: .relaxed)
    }

    /// The exchange is over, its body included (a long stream counts as in flight until it ends).
    func finished() {
        inFlightCount.wrappingDecrement(ordering: .relaxed)
    }

    /// Counts a failure; with passive checks on, `maxFails` of them within `failDuration` take the upstream
    /// out until the window has passed since the latest.
    func failed(_ health: ReverseProxy.PassiveHealth?) {
        failCount.wrappingIncrement(ordering: .relaxed)
        guard let health else { return }
        let now = NIODeadline.now().uptimeNanoseconds
        let window = UInt64(health.failDuration.nanoseconds)
        let recent = failures.withLock { failures in
            failures.removeAll { now - $0 >= window }
            failures.append(now)
            return failures.count
        }
        if recent >= health.maxFails { unhealthyUntil.store(now + window, ordering: .relaxed) }
    }

    var status: JSONValue {
        [
            "address": .string(key), "healthy": .bool(isAvailable), "in_flight": .integer(Int64(inFlight)),
            "requests": .integer(Int64(requestCount.load(ordering: .relaxed))),
            "fails": .integer(Int64(failCount.load(ordering: .relaxed))),
            "last_latency_ms": .double(Double(lastLatencyNanoseconds.load(ordering: .relaxed)) / 1_000_000),
        ]
    }
}

/// The upstreams of the current config by address. A config change gets the existing object for every address
/// it keeps, so pools and health carry over; addresses no config names any more are dropped with it.
final class UpstreamRegistry: @unchecked Sendable {
    // Touched only by the ConfigCoordinator, one change at a time.
    private var upstreams: [String: Upstream] = [:]
    private var used: [String: Upstream] = [:]
    private let loops: [any EventLoop]

    init(group: any EventLoopGroup) {
        loops = Array(group.makeIterator())
    }

    /// Compiles a router whose proxies use this registry's upstreams; returns it with the upstreams it names.
    func router(for config: VelocityConfig) -> (Router, [Upstream]) {
        used = [:]
        let router = Router(config: config) { [self] key in
            // Validation has checked every address.
            let upstream =
                upstreams[key] ?? used[key]
                ?? Upstream(key: key, address: ListenAddress(key) ?? .unix(path: "/"), loops: loops)
            used[key] = upstream
            return upstream
        }
        return (router, used.values.sorted { $0.key < $1.key })
    }

    /// The config compiled last is live: from now on it alone decides which upstreams are kept.
    func commit() {
        upstreams = used
    }
}
