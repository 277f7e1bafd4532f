import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import VelocityConfig
import VelocityHTTP3
import VelocityQUIC

struct QUICLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Generate HTTP/3 load with Velocity's own client: requests per second and latency, or handshakes.",
        discussion: """
            Requests: --connections connections each keep --streams GET requests in flight until --requests have \
            been answered; it prints requests/s, body throughput and latency percentiles. Handshakes \
            (--handshakes N): --connections handshakes at a time, each connection closed once established, until \
            N have completed; it prints handshakes/s and their latency. Connections are spread over --threads \
            event loops, one UDP socket each.
            """)

    @Argument(help: "https://host[:port]/path")
    var url: String

    @Option(help: "Connections in parallel (handshakes in parallel with --handshakes).")
    var connections = 1

    @Option(help: "Requests to complete in all.")
    var requests = 10_000

    @Option(help: "Requests in flight per connection.")
    var streams = 10

    @Option(help: "Measure handshakes instead of requests: complete this many.")
    var handshakes: Int?

    @Option(help: "Event loops (threads) for the connections; default: one per core.")
    var threads = System.coreCount

    @OptionGroup var client: QUICClientOptions

    @Flag(help: "Print the result as one JSON object on stdout.")
    var json = false

    func validate() throws {
        _ = try QUICTarget(url: url)
        guard connections >= 1, requests >= 1, (1...100).contains(streams), threads >= 1,
            (handshakes ?? 1) >= 1
        else {
            throw ValidationError("--connections, --requests, --threads, --handshakes ≥ 1; --streams 1 to 100")
        }
    }

    func run() async throws {
        let target = try QUICTarget(url: url)
        let address = try SocketAddress.makeAddressResolvingHost(target.host, port: target.port)
        let configuration = QUICClientConfiguration(
            tls: try client.tlsContext(alpn: [HTTP3ClientConnection.alpn]), settings: client.settings)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let serverName = client.serverName ?? target.host
        var sockets: [QUICClient] = []
        for _ in 0..<connections { sockets.append(try await QUICClient.bind(group: group, for: address)) }

        let start = ContinuousClock.now
        let results: [LoadResult]
        if let handshakes {
            let budget = LoadBudget(handshakes)
            results = try await Self.gather(sockets) { socket, done in
                let slot = HandshakeLoad(
                    socket: socket, address: address, serverName: serverName, configuration: configuration,
                    budget: budget, done: done)
                slot.next()
                return { slot.result }
            }
        } else {
            let head = HTTPRequestHead(
                version: .init(major: 3, minor: 0), method: .GET, uri: target.path,
                headers: ["host": target.authority, "user-agent": "velocity/\(Velocity.version)"])
            let budget = LoadBudget(requests)
            let streams = streams
            results = try await Self.gather(sockets) { socket, done in
                let result = NIOLoopBoundBox<(() -> LoadResult)?>(nil, eventLoop: socket.eventLoop)
                HTTP3ClientConnection.connect(
                    using: socket.endpoint, to: address, serverName: serverName, configuration: configuration
                ).assumeIsolated().whenComplete { outcome in
                    switch outcome {
                    case .success(let application):
                        let load = RequestLoad(
                            connection: application, head: head, streams: streams, budget: budget, done: done)
                        result.value = { load.result }
                        load.fill()
                    case .failure(let error):
                        var failed = LoadResult()
                        failed.fail(error)
                        result.value = { failed }
                        done.succeed()
                    }
                }
                return { result.value?() ?? LoadResult() }
            }
        }
        let elapsed = elapsedSeconds(since: start)
        for socket in sockets { try? await socket.close() }
        try? await group.shutdownGracefully()
        report(LoadSummary(results, seconds: elapsed))
        if results.contains(where: { $0.failures > 0 }) { throw ExitCode(1) }
    }

    /// Starts one load per socket on its event loop and waits for all; `start` returns how to read the
    /// result once its promise is fulfilled.
    private static func gather(
        _ sockets: [QUICClient],
        start: @escaping @Sendable (QUICClient, EventLoopPromise<Void>) -> () -> LoadResult
    ) async throws -> [LoadResult] {
        var readers: [EventLoopFuture<LoadResult>] = []
        for socket in sockets {
            let eventLoop = socket.eventLoop
            let promise = eventLoop.makePromise(of: Void.self)
            let reader = try await eventLoop.submit { NIOLoopBound(start(socket, promise), eventLoop: eventLoop) }
                .get()
            readers.append(promise.futureResult.map { reader.value() })
        }
        var results: [LoadResult] = []
        for reader in readers { results.append(try await reader.get()) }
        return results
    }

    private func report(_ summary: LoadSummary) {
        let unit = handshakes == nil ? "requests" : "handshakes"
        if json {
            print(summary.json(unit: unit, connections: connections, streams: handshakes == nil ? streams : nil))
            return
        }
        print(
            "\(summary.completed) \(unit) completed, \(summary.failures) failed"
                + (handshakes == nil ? ", \(summary.unexpectedStatus) not 2xx" : "")
                + String(format: " in %.2f s over %d connection(s)", summary.seconds, connections)
                + (handshakes == nil ? " × \(streams) streams" : " at a time"))
        print(String(format: "%@/s: %.0f", unit, summary.rate))
        if handshakes == nil {
            print(String(format: "throughput: %.1f MB/s of response bodies", summary.bodyRate / 1e6))
        }
        print(summary.latencyLine)
        if !summary.group.isEmpty { print("key exchange: \(summary.group)") }
        if let error = summary.firstError { print("first failure: \(error)") }
    }
}

/// A load run's results, all connections together.
struct LoadSummary {
    var completed: Int
    var failures: Int
    var unexpectedStatus: Int
    var bodyBytes: Int
    var seconds: Double
    var group: String
    var firstError: String?
    /// Microseconds, sorted.
    private var latencies: [UInt32]

    init(_ results: [LoadResult], seconds: Double) {
        latencies = results.flatMap(\.latencies).sorted()
        completed = latencies.count
        failures = results.reduce(0) { $0 + $1.failures }
        unexpectedStatus = results.reduce(0) { $0 + $1.unexpectedStatus }
        bodyBytes = results.reduce(0) { $0 + $1.bodyBytes }
        group = results.first { !$0.group.isEmpty }?.group ?? ""
        firstError = results.lazy.compactMap(\.firstError).first
        self.seconds = seconds
    }

    var rate: Double { Double(completed) / max(seconds, 1e-9) }
    var bodyRate: Double { Double(bodyBytes) / max(seconds, 1e-9) }

    /// The latency below which `fraction` of the samples lie, in milliseconds.
    func percentile(_ fraction: Double) -> Double {
        guard !latencies.isEmpty else { return 0 }
        let index = min(latencies.count - 1, Int((Double(latencies.count) * fraction).rounded(.up)) - 1)
        return Double(latencies[max(0, index)]) / 1000
    }

    var latencyLine: String {
        String(
            format: "latency: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms", percentile(0.5), percentile(0.9),
            percentile(0.99), percentile(1))
    }

    func json(unit: String, connections: Int, streams: Int?) -> String {
        var document: JSONValue = [
            "unit": .string(unit), "completed": .integer(Int64(completed)), "failed": .integer(Int64(failures)),
            "not_2xx": .integer(Int64(unexpectedStatus)), "seconds": .double(seconds), "per_second": .double(rate),
            "body_bytes": .integer(Int64(bodyBytes)), "connections": .integer(Int64(connections)),
            "group": .string(group),
            "latency_ms": [
                "p50": .double(percentile(0.5)), "p90": .double(percentile(0.9)), "p99": .double(percentile(0.99)),
                "max": .double(percentile(1)),
            ],
        ]
        if let streams { document = document.setting("streams", .integer(Int64(streams))) }
        if let firstError { document = document.setting("first_error", .string(firstError)) }
        return document.serialized()
    }
}

extension JSONValue {
    fileprivate func setting(_ key: String, _ value: JSONValue) -> JSONValue {
        guard var object = objectValue else { return self }
        object[key] = value
        return .object(object)
    }
}
