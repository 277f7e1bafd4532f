import NIOCore
import NIOHTTP1
import Synchronization
import VelocityHTTP3
import VelocityQUIC

/// How many units of work (requests or handshakes) a load run has left to start, shared by its connections.
final class LoadBudget: Sendable {
    private let remaining: Atomic<Int>

    init(_ count: Int) {
        remaining = Atomic(count)
    }

    /// Takes one unit; false once none is left.
    func take() -> Bool {
        remaining.subtract(1, ordering: .relaxed).newValue >= 0
    }
}

/// What one connection (or handshake slot) of a load run measured.
struct LoadResult: Sendable {
    /// Microseconds per request or handshake that succeeded.
    var latencies: [UInt32] = []
    var failures = 0
    /// Responses that were not 2xx.
    var unexpectedStatus = 0
    var bodyBytes = 0
    /// The key-exchange group negotiated, the last one seen.
    var group = ""
    /// The first failure, to show.
    var firstError: String?

    mutating func fail(_ error: any Error) {
        failures += 1
        if firstError == nil { firstError = "\(error)" }
    }
}

/// One connection's share of a request run: it keeps `streams` requests in flight until the budget is
/// spent. Runs on the connection's event loop, so a finished request starts the next without a hop.
final class RequestLoad: HTTP3ResponseHandler {
    private let connection: HTTP3ClientConnection
    private let head: HTTPRequestHead
    private let streams: Int
    private let budget: LoadBudget
    private let done: EventLoopPromise<Void>
    private var started: [UInt64: NIODeadline] = [:]
    /// A request taken from the budget that the server's stream limit kept from starting yet.
    private var deferred = 0
    private var isDone = false
    private(set) var result = LoadResult()

    init(
        connection: HTTP3ClientConnection, head: HTTPRequestHead, streams: Int, budget: LoadBudget,
        done: EventLoopPromise<Void>
    ) {
        self.connection = connection
        self.head = head
        self.streams = streams
        self.budget = budget
        self.done = done
        result.group = connection.connection?.sessionInfo.group ?? ""
    }

    /// Starts requests until `streams` are in flight or the budget is spent; with none in flight, the run of
    /// this connection is over (a request that could not start then counts as failed).
    func fill() {
        while started.count < streams {
            if deferred == 0 {
                guard budget.take() else { break }
                deferred = 1
            }
            guard let id = connection.sendRequest(head, endStream: true, handler: self) else { break }
            deferred = 0
            started[id] = .now()
        }
        guard started.isEmpty, !isDone else { return }
        isDone = true
        if deferred > 0 { result.fail(QUICStreamError.noStreamAvailable) }
        done.succeed()
    }

    func responseHead(_ head: HTTPResponseHead, streamID: UInt64) {
        if !(200..<300).contains(head.status.code) { result.unexpectedStatus += 1 }
    }

    func responseBody(_ bytes: ByteBuffer, streamID: UInt64) {
        result.bodyBytes += bytes.readableBytes
    }

    func responseEnd(trailers: HTTPHeaders?, streamID: UInt64) {
        if let start = started.removeValue(forKey: streamID) {
            result.latencies.append(UInt32(clamping: (NIODeadline.now() - start).nanoseconds / 1000))
        }
        fill()
    }

    func requestFailed(_ error: any Error, streamID: UInt64) {
        result.fail(error)
        started[streamID] = nil
        fill()
    }
}

/// One slot of a handshake run: connects, waits for the handshake, closes, and connects again until the
/// budget is spent; on the socket's event loop.
final class HandshakeLoad {
    private let socket: QUICClient
    private let address: SocketAddress
    private let serverName: String
    private let configuration: QUICClientConfiguration
    private let budget: LoadBudget
    private let done: EventLoopPromise<Void>
    private(set) var result = LoadResult()

    init(
        socket: QUICClient, address: SocketAddress, serverName: String, configuration: QUICClientConfiguration,
        budget: LoadBudget, done: EventLoopPromise<Void>
    ) {
        self.socket = socket
        self.address = address
        self.serverName = serverName
        self.configuration = configuration
        self.budget = budget
        self.done = done
    }

    func next() {
        guard budget.take() else { return done.succeed() }
        let start = NIODeadline.now()
        HTTP3ClientConnection.connect(
            using: socket.endpoint, to: address, serverName: serverName, configuration: configuration
        ).assumeIsolated().whenComplete { [self] outcome in
            switch outcome {
            case .success(let application):
                result.latencies.append(UInt32(clamping: (NIODeadline.now() - start).nanoseconds / 1000))
                result.group = application.connection?.sessionInfo.group ?? result.group
                application.close()
            case .failure(let error):
                result.fail(error)
            }
            next()
        }
    }
}
