import Atomics
import NIOCore
import NIOSSL
import Synchronization
import VelocityConfig
import VelocityHTTP

/// One upstream server, shared by every config that names its address: its idle connections (one pool per
/// event loop, so taking one needs no lock), its counters, and its passive health.
final class Upstream: ProxyUpstream, @unchecked Sendable {
    // Unchecked: `streak` is touched only on the checking event loop and `checks` only when checks start (before
    // the upstream is published) and in deinit; everything else is immutable, atomic or behind a mutex.
    let key: String
    let address: ListenAddress
    /// For HTTPS upstreams: the client context and the name to send and verify.
    let tls: (context: NIOSSLContext, serverName: String?)?
    private let pools: [ObjectIdentifier: ConnectionPool]

    private let inFlightCount = ManagedAtomic<Int>(0)
    private let requestCount = ManagedAtomic<Int>(0)
    private let failCount = ManagedAtomic<Int>(0)
    private let lastLatencyNanoseconds = ManagedAtomic<Int>(0)
    /// Uptime nanoseconds until which the upstream is skipped; read on every selection, so an atomic.
    private let unhealthyUntil = ManagedAtomic<UInt64>(0)
    /// Recent failure times, touched only when a request fails.
    private let failures = Mutex<[UInt64]>([])
    /// The verdict of active checks (true until one says otherwise).
    private let checkedHealthy = ManagedAtomic<Bool>(true)
    /// Consecutive check results, touched only on the checking event loop.
    private var streak: (passed: Bool, count: Int) = (true, 0)
    private var checks: RepeatedTask?
    /// Set when the server stops: the pools are closed already, and the event loops may be gone by deinit.
    private let retired = ManagedAtomic<Bool>(false)

    init(
        key: String, address: ListenAddress, tls: (context: NIOSSLContext, serverName: String?)?,
        loops: [any EventLoop]
    ) {
        self.key = key
        self.address = address
        self.tls = tls
        pools = Dictionary(uniqueKeysWithValues: loops.map { (ObjectIdentifier($0), ConnectionPool(eventLoop: $0)) })
    }

    deinit {
        retire()
    }

    /// Stops checks and closes idle connections, once.
    func retire() {
        guard !retired.exchange(true, ordering: .relaxed) else { return }
        checks?.cancel()
        for pool in pools.values { pool.closeAll() }
    }

    /// Starts active checks on the first event loop; they stop when the upstream is dropped.
    func startChecks(_ check: ActiveHealthConfig) {
        let pool = pools.values.first!
        let interval = TimeAmount.milliseconds(Int64(check.intervalMs ?? 10_000))
        checks = pool.eventLoop.scheduleRepeatedAsyncTask(initialDelay: .zero, delay: interval) { [weak self] _ in
            guard let self else { return pool.eventLoop.makeSucceededVoidFuture() }
            return HealthProbe.run(self, check: check, pool: pool).map { self.record($0, check) }
        }
    }

    /// `fails` failed checks in a row take the upstream out; `passes` good ones in a row bring it back.
    private func record(_ passed: Bool, _ check: ActiveHealthConfig) {
        streak = streak.passed == passed ? (passed, streak.count + 1) : (passed, 1)
        if passed, streak.count >= (check.passes ?? 1) { checkedHealthy.store(true, ordering: .relaxed) }
        if !passed, streak.count >= (check.fails ?? 1) { checkedHealthy.store(false, ordering: .relaxed) }
    }

    var isAvailable: Bool {
        checkedHealthy.load(ordering: .relaxed)
            && NIODeadline.now().uptimeNanoseconds >= unhealthyUntil.load(ordering: .relaxed)
    }
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

/// The upstreams of the current config by spec (address and TLS settings). A config change gets the existing
/// object for every upstream it keeps, so pools and health carry over; upstreams no config names any more are
/// dropped with it.
final class UpstreamRegistry: @unchecked Sendable {
    // Touched only by the ConfigCoordinator, one change at a time.
    private var upstreams: [UpstreamSpec: Upstream] = [:]
    private var compiled: [UpstreamSpec: Upstream] = [:]
    private let loops: [any EventLoop]

    init(group: any EventLoopGroup) {
        loops = Array(group.makeIterator())
    }

    /// Compiles a router whose proxies use this registry's upstreams; returns it with the upstreams it names.
    /// Fails, naming the entry, when an upstream's TLS settings cannot be loaded (a missing CA file, a key
    /// that does not match).
    func router(for config: VelocityConfig) throws(ConfigError) -> (Router, [Upstream]) {
        var prepared: [UpstreamSpec: Upstream] = [:]
        for (pointer, proxy) in Self.proxies(in: config) {
            for (index, upstream) in proxy.upstreams.enumerated() {
                let spec = UpstreamSpec(
                    dial: upstream.dial, tls: proxy.transport?.tls, activeCheck: proxy.healthChecks?.active)
                guard prepared[spec] == nil else { continue }
                if let existing = upstreams[spec] {
                    prepared[spec] = existing
                    continue
                }
                prepared[spec] = try make(spec, at: pointer.appending("upstreams").appending(index))
            }
        }
        compiled = prepared
        let router = Router(config: config) { prepared[$0]! }
        return (router, prepared.values.sorted { $0.key < $1.key })
    }

    /// The config compiled last is live: from now on it alone decides which upstreams are kept.
    func commit() {
        upstreams = compiled
    }

    /// Retires every upstream while the event loops still run; snapshots may hold them until after.
    func shutdown() {
        for upstream in upstreams.values { upstream.retire() }
    }

    private func make(_ spec: UpstreamSpec, at pointer: JSONPointer) throws(ConfigError) -> Upstream {
        // Validation has checked the address.
        let address = ListenAddress(spec.dial) ?? .unix(path: "/")
        let upstream = try Self.connect(spec, address: address, loops: loops, at: pointer)
        if let check = spec.activeCheck { upstream.startChecks(check) }
        return upstream
    }

    private static func connect(
        _ spec: UpstreamSpec, address: ListenAddress, loops: [any EventLoop], at pointer: JSONPointer
    ) throws(ConfigError) -> Upstream {
        guard let settings = spec.tls else { return Upstream(key: spec.dial, address: address, tls: nil, loops: loops) }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if settings.insecureSkipVerify == true { configuration.certificateVerification = .none }
        do {
            if let caFile = settings.caFile {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            }
            if let certificate = settings.clientCertificateFile, let key = settings.clientKeyFile {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            }
            let context = try NIOSSLContext(configuration: configuration)
            return Upstream(
                key: spec.dial, address: address, tls: (context, settings.serverName ?? address.hostName), loops: loops)
        } catch {
            throw ConfigError(at: pointer, "cannot set up TLS to \(spec.dial): \(error)")
        }
    }

    /// Every `reverse_proxy` handler of a config with its pointer, subroutes included.
    private static func proxies(in config: VelocityConfig) -> [(JSONPointer, ReverseProxyConfig)] {
        var found: [(JSONPointer, ReverseProxyConfig)] = []
        func visit(_ routes: [RouteConfig]?, at pointer: JSONPointer) {
            for (routeIndex, route) in (routes ?? []).enumerated() {
                for (handlerIndex, handler) in (route.handle ?? []).enumerated() {
                    let handlerPointer = pointer.appending(routeIndex).appending("handle").appending(handlerIndex)
                    switch handler {
                    case .reverseProxy(let proxy): found.append((handlerPointer, proxy))
                    case .subroute(let subroute): visit(subroute.routes, at: handlerPointer.appending("routes"))
                    default: break
                    }
                }
            }
        }
        for (index, site) in (config.sites ?? []).enumerated() {
            visit(site.routes, at: JSONPointer(tokens: ["sites", String(index), "routes"]))
        }
        return found
    }
}
