import NIOCore
import NIOHTTP1
import VelocityConfig

/// One active health check: `GET path` on a fresh connection, judged by status and body.
final class HealthProbe: UpstreamExchange {
    private let check: ActiveHealthConfig
    private let promise: EventLoopPromise<Bool>
    private var connection: UpstreamConnection?
    private var status: UInt = 0
    private var body: ByteBuffer?
    private var timeout: Scheduled<Void>?
    private var finished = false

    static let bodyLimit = 64 * 1024

    private init(check: ActiveHealthConfig, promise: EventLoopPromise<Bool>) {
        self.check = check
        self.promise = promise
    }

    /// Checks `upstream` once from `pool`'s event loop; the future says whether it passed.
    static func run(_ upstream: Upstream, check: ActiveHealthConfig, pool: ConnectionPool) -> EventLoopFuture<Bool> {
        let promise = pool.eventLoop.makePromise(of: Bool.self)
        let probe = HealthProbe(check: check, promise: promise)
        let timeout = TimeAmount.milliseconds(Int64(check.timeoutMs ?? 2000))
        probe.timeout = pool.eventLoop.assumeIsolated().scheduleTask(in: timeout) { probe.finish(false) }
        pool.dial(upstream.address, tls: upstream.tls, timeout: timeout).assumeIsolated().whenComplete { result in
            guard case .success(let connection) = result else { return probe.finish(false) }
            guard !probe.finished else { return connection.channel.close(promise: nil) }
            probe.connection = connection
            connection.exchange = probe
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: check.host ?? upstream.key)
            headers.add(name: "User-Agent", value: "velocity-health-check")
            headers.add(name: "Connection", value: "close")
            connection.write(
                .head(HTTPRequestHead(version: .http1_1, method: .GET, uri: check.path ?? "/", headers: headers)))
            connection.write(.end(nil), flush: true)
        }
        return promise.futureResult
    }

    func upstreamRead(_ part: HTTPClientResponsePart) {
        switch part {
        case .head(let head):
            status = head.status.code
        case .body(var chunk):
            if check.expectBody != nil, (body?.readableBytes ?? 0) < Self.bodyLimit {
                body = body ?? ByteBuffer()
                body!.writeBuffer(&chunk)
            }
        case .end:
            let statusPasses =
                check.expectStatus.map { $0.contains(Int(status)) } ?? (200...299).contains(Int(status))
            let bodyPasses = check.expectBody.map { String(buffer: body ?? ByteBuffer()).contains($0) } ?? true
            finish(statusPasses && bodyPasses)
        }
    }

    func upstreamFailed(_ cause: String, closed: Bool) {
        finish(false)
    }

    func upstreamWritabilityChanged(_ writable: Bool) {}

    func upstreamReadComplete() {}

    private func finish(_ passed: Bool) {
        guard !finished else { return }
        finished = true
        timeout?.cancel()
        timeout = nil
        connection?.exchange = nil
        connection?.channel.close(promise: nil)
        connection = nil
        promise.succeed(passed)
    }
}
