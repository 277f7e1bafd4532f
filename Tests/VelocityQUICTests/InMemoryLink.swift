import NIOCore
import VelocityConfig
import VelocityTLS

@testable import VelocityQUIC

/// A client and a server ``QUICConnection`` joined by a simulated path with a fixed one-way delay, on a
/// simulated clock: both sides' datagrams, timers and losses run in order without a socket or real time.
/// The server is made as ``QUICEndpoint`` makes it, from the client's first Initial.
final class InMemoryLink {
    static let authority = try! InternalCA.create()
    static let clientAddress = try! SocketAddress(ipAddress: "127.0.0.1", port: 50_000)
    static let serverAddress = try! SocketAddress(ipAddress: "127.0.0.1", port: 4433)

    let client: QUICConnection
    private(set) var server: QUICConnection?
    let clientApplication = RecordingApplication()
    /// What the server runs once the handshake completes; echo by default.
    var serverApplication: (String?) -> QUICApplication? = { _ in EchoApplication() }
    private(set) var now = NIODeadline.now()
    let delay = TimeAmount.milliseconds(5)
    /// Decides per datagram whether the path loses it: (toServer, its index in that direction, its bytes).
    var drop: (Bool, Int, ByteBuffer) -> Bool = { _, _, _ in false }
    /// Answers the client's first Initial with a Retry instead of a connection (RFC 9000 §8.1.2).
    var retry: (id: ConnectionID, token: [UInt8])?
    /// The server's original_destination_connection_id, when a test wants it wrong.
    var serverOriginalID: ConnectionID?
    private(set) var sentToServer = 0
    private(set) var sentToClient = 0
    private var inFlight: [(arrival: NIODeadline, toServer: Bool, data: ByteBuffer)] = []
    private let serverContext: TLSServerContext
    private let certificates: CertificateTable
    private let serverSettings: ConnectionSettings

    init(
        groups: [KeyExchangeGroup] = KeyExchangeGroup.defaults, clientSettings: ConnectionSettings = .init(),
        serverSettings: ConnectionSettings = .init(), verification: TLSClientContext.Verification? = nil
    ) throws {
        let bundle = try Self.authority.issue(for: ["localhost"])
        let credential = try TLSCredential(
            certificateChainPEM: bundle.certificateChainPEM, privateKeyPEM: bundle.privateKeyPEM)
        certificates = CertificateTable([credential])
        serverContext = try TLSServerContext(tickets: nil, alpn: [EchoApplication.alpn, "h3"])
        self.serverSettings = serverSettings
        let tls = try TLSClientContext(
            groups: groups, alpn: [EchoApplication.alpn],
            verification: verification ?? .roots(pem: Self.authority.certificatePEM))
        client = QUICConnection.client(
            to: Self.serverAddress, serverName: "localhost", localID: ConnectionID.random(count: 8), tls: tls,
            settings: clientSettings, token: nil, now: now, allocator: ByteBufferAllocator())!
        client.makeApplication = { [clientApplication] _ in clientApplication }
    }

    /// Runs the path until `condition` holds or `limit` of simulated time passes; returns whether it held.
    @discardableResult
    func run(for limit: TimeAmount = .seconds(30), until condition: () -> Bool) -> Bool {
        let end = now + limit
        while !condition() {
            send(client.flush(now: now), toServer: true)
            if let server { send(server.flush(now: now), toServer: false) }
            if condition() { return true }
            var next = inFlight.map(\.arrival).min() ?? .distantFuture
            if let deadline = client.nextDeadline { next = min(next, deadline) }
            if let deadline = server?.nextDeadline { next = min(next, deadline) }
            guard next <= end else { return false }
            now = max(now, next)
            deliverArrivals()
            if let deadline = client.nextDeadline, deadline <= now { client.handleTimeout(now: now) }
            if let server, let deadline = server.nextDeadline, deadline <= now { server.handleTimeout(now: now) }
        }
        return true
    }

    /// Hands a datagram straight to the client, as if it came from the server.
    func inject(_ datagram: ByteBuffer) {
        client.receive(datagram, from: Self.serverAddress, ecn: .transportNotCapable, now: now)
    }

    private func send(_ datagrams: [OutgoingDatagram], toServer: Bool) {
        for datagram in datagrams {
            let index = toServer ? sentToServer : sentToClient
            if toServer { sentToServer += 1 } else { sentToClient += 1 }
            if drop(toServer, index, datagram.data) { continue }
            inFlight.append((now + delay, toServer, datagram.data))
        }
    }

    private func deliverArrivals() {
        let arrived = inFlight.filter { $0.arrival <= now }
        inFlight.removeAll { $0.arrival <= now }
        for datagram in arrived {
            if datagram.toServer {
                deliverToServer(datagram.data)
            } else {
                client.receive(datagram.data, from: Self.serverAddress, ecn: .transportNotCapable, now: now)
            }
        }
    }

    private func deliverToServer(_ datagram: ByteBuffer) {
        if let server {
            return server.receive(datagram, from: Self.clientAddress, ecn: .transportNotCapable, now: now)
        }
        guard let header = try? PacketHeader.parse(datagram, at: 0, shortHeaderIDLength: 8) else { return }
        if let retry, header.token?.readableBytes ?? 0 == 0 {
            inFlight.append((now + delay, false, Self.retryPacket(for: header, id: retry.id, token: retry.token)))
            return
        }
        let localID = retry?.id ?? ConnectionID.random(count: 8)
        var parameters = ByteBuffer()
        var local = QUICConnection.localParameters(
            settings: serverSettings, initialDestination: header.destination, localID: localID,
            resetToken: StatelessResetToken(high: 1, low: 2),
            retry: retry.map { _ in (client.client!.originalDestination, header.destination) })
        if let serverOriginalID { local.originalDestinationConnectionID = serverOriginalID }
        local.encode(into: &parameters)
        let handshake = QUICHandshake(
            context: serverContext, certificates: certificates, localName: nil,
            transportParameters: Array(parameters.readableBytesView))!
        let server = QUICConnection(
            settings: serverSettings, initialDestination: header.destination, localID: localID,
            peerID: header.source, remoteAddress: Self.clientAddress, handshake: handshake, now: now,
            allocator: ByteBufferAllocator())
        server.addressValidated = retry != nil
        server.makeApplication = serverApplication
        var issued: UInt64 = 10
        server.issueConnectionID = {
            issued += 1
            return (ConnectionID.random(count: 8), StatelessResetToken(high: issued, low: issued))
        }
        self.server = server
        server.receive(datagram, from: Self.clientAddress, ecn: .transportNotCapable, now: now)
    }

    /// A Retry for the client's Initial `header`, with the integrity tag of RFC 9001 §5.8.
    static func retryPacket(for header: PacketHeader, id: ConnectionID, token: [UInt8]) -> ByteBuffer {
        var packet: [UInt8] = [0xF0, 0, 0, 0, 1, UInt8(header.source.count)] + header.source.bytes
        packet += [UInt8(id.count)] + id.bytes + token
        let pseudoPacket = [UInt8(header.destination.count)] + header.destination.bytes + packet
        return ByteBuffer(bytes: packet + QUICRetryIntegrity.tag(pseudoPacket: pseudoPacket))
    }
}

/// Records what a connection delivers to its application, per stream.
final class RecordingApplication: QUICApplication {
    var received: [UInt64: ByteBuffer] = [:]
    var finished: Set<UInt64> = []
    var resets: [UInt64: UInt64] = [:]
    var started = false
    var closed = false

    func received(_ data: ByteBuffer, onStream id: UInt64, fin: Bool, connection: QUICConnection) {
        var data = data
        received[id, default: ByteBuffer()].writeBuffer(&data)
        if fin { finished.insert(id) }
    }

    func received(datagram: ByteBuffer, connection: QUICConnection) {}

    func streamReset(_ id: UInt64, errorCode: UInt64, connection: QUICConnection) {
        resets[id] = errorCode
    }

    func connectionClosed(_ connection: QUICConnection) {
        closed = true
    }

    func started(_ connection: QUICConnection) {
        started = true
    }
}
