import NIOCore
import VelocityTLS

/// What runs on top of a QUIC connection (HTTP/3, or the echo protocol used to test the transport). Called on
/// the connection's event loop.
public protocol QUICApplication: AnyObject {
    /// Stream data in order; `fin` marks its end.
    func received(_ data: ByteBuffer, onStream id: UInt64, fin: Bool, connection: QUICConnection)
    /// An unreliable datagram (RFC 9221), when the server enables them.
    func received(datagram: ByteBuffer, connection: QUICConnection)
    /// The peer abandoned its side of a stream (RESET_STREAM).
    func streamReset(_ id: UInt64, errorCode: UInt64, connection: QUICConnection)
    func connectionClosed(_ connection: QUICConnection)
    /// The handshake completed and the application was chosen: it may open its own streams now.
    func started(_ connection: QUICConnection)
    /// The server is going away: the application lets work in progress finish and then closes the connection
    /// (HTTP/3 sends GOAWAY). The endpoint closes what is still open when its grace period ends.
    func shutdown(_ connection: QUICConnection)
    /// A stream whose ``QUICConnection/write(_:toStream:fin:)`` answered ``StreamWriteResult/full`` has sent
    /// enough of its buffer to take more.
    func streamWritable(_ id: UInt64, connection: QUICConnection)
}

extension QUICApplication {
    public func started(_ connection: QUICConnection) {}
    public func shutdown(_ connection: QUICConnection) {
        connection.close(errorCode: 0, reason: "server shutting down")
    }
    public func streamWritable(_ id: UInt64, connection: QUICConnection) {}
}

/// What became of data handed to ``QUICConnection/write(_:toStream:fin:)``.
public enum StreamWriteResult: Sendable {
    /// Queued, and the stream's buffer has room for more.
    case accepted
    /// Queued, but the buffer is over its high-water mark: the application should wait for
    /// ``QUICApplication/streamWritable(_:connection:)``.
    case full
    /// The stream no longer sends (it was reset, stopped by the peer, or finished): the data was dropped.
    case closed
}

/// One QUIC connection (RFC 9000, 9001, 9002), on the server or the client side: the same packets, recovery,
/// streams and flow control serve both, and only the handshake's steps and who opens which stream differ
/// (`role`). It owns its packet number spaces, streams, recovery and TLS handshake; the endpoint feeds it
/// datagrams and timeouts and sends the datagrams it builds. Not thread-safe: it lives on the endpoint's
/// event loop.
public final class QUICConnection {
    enum Role {
        case client
        case server
    }

    enum State: Equatable {
        case handshaking
        /// The handshake finished; HANDSHAKE_DONE tells the client, which waits for it to confirm the handshake.
        case established
        /// We sent CONNECTION_CLOSE and repeat it to late packets until `until`.
        case closing(until: NIODeadline)
        /// The peer closed; nothing more is sent.
        case draining(until: NIODeadline)
        case closed
    }

    let role: Role
    let settings: ConnectionSettings
    /// The destination ID of the client's Initial packets: the Initial keys come from it. After a Retry it is
    /// the ID the Retry gave the client.
    var initialDestination: ConnectionID
    /// The ID this endpoint chose; the peer addresses every later packet to it.
    let localID: ConnectionID
    /// The peer's ID, which every packet we send is addressed to.
    var peerID: ConnectionID
    public internal(set) var remoteAddress: SocketAddress
    /// The address the connection started from, which its per-address count belongs to.
    let acceptedFrom: SocketAddress

    var state = State.handshaking
    let handshake: QUICHandshake
    var application: QUICApplication?
    var spaces = [PacketNumberSpace(), PacketNumberSpace(), PacketNumberSpace()]
    var rtt = RTTEstimator()
    var congestion: CongestionController
    var pacer: Pacer
    var ecn = ECNValidation()
    /// When the pacer lets the next datagram go, while it holds one back.
    var pacingDeadline: NIODeadline?
    var ptoCount = 0
    var peerParameters: TransportParameters?
    var peerMaxAckDelay: TimeAmount = .milliseconds(25)

    // Key update (RFC 9001 §6): the phase bit of current 1-RTT keys, the next read key and the previous one
    // for packets reordered across an update, the peer's first packet in this phase (UInt64.max until the
    // peer follows an update we started) and our first.
    var keyPhase = false
    var nextReadKey: QUICPacketKey?
    var previousReadKey: QUICPacketKey?
    var firstPacketOfPhase: UInt64 = 0
    var firstSentOfPhase: UInt64 = 0

    /// Anti-amplification (RFC 9000 §8.1): until the client proves its address, we send at most three times
    /// what it sent.
    var addressValidated = false
    var bytesReceived = 0
    var bytesSent = 0

    var streams: [UInt64: QUICStream] = [:]
    /// Streams with data to send, served in turn.
    var sendingStreams = CircularBuffer<UInt64>()
    /// The next peer stream ID of each kind that would be new, and how many the peer may open.
    var nextPeerBidirectional: UInt64
    var nextPeerUnidirectional: UInt64
    var maxPeerBidirectional: UInt64
    var maxPeerUnidirectional: UInt64
    var sendsMaxStreams = (bidirectional: false, unidirectional: false)
    /// The next stream ID of each kind this endpoint would open.
    var nextLocalBidirectional: UInt64
    var nextLocalUnidirectional: UInt64
    /// How many streams of each kind the peer lets us open (its parameters, raised by MAX_STREAMS).
    var peerMaxBidirectional: UInt64 = 0
    var peerMaxUnidirectional: UInt64 = 0
    /// Streams whose writer was told ``StreamWriteResult/full`` and waits to hear that it may write again.
    var blockedWriters: [UInt64] = []
    /// A send is already requested for data the application queued outside of a read.
    var wakePending = false
    /// An application close that waits until every stream's data has been acknowledged.
    var closeWhenSent: ConnectionCloseFrame?

    // Connection-level flow control.
    var receiveLimit: UInt64
    var receivedTotal: UInt64 = 0
    var consumedTotal: UInt64 = 0
    var sendsMaxData = false
    var sendLimit: UInt64 = 0
    var sentTotal: UInt64 = 0

    var sendsHandshakeDone = false
    var establishedEventPending = false
    var pathResponses: [UInt64] = []
    var pendingDatagrams = CircularBuffer<ByteBuffer>()
    /// Answers to PATH_CHALLENGE frames that came from another address than the current path's: they go back
    /// to where the challenge came from.
    var probeResponses: [(data: UInt64, address: SocketAddress, padded: Bool)] = []
    var pathValidation: PathValidation?
    /// The CONNECTION_CLOSE frame to send (and repeat while closing).
    var closeFrame: ConnectionCloseFrame?
    /// Why the connection ended, once it has.
    public internal(set) var closeReason: QUICCloseReason?
    /// A CONNECTION_CLOSE is owed: once on closing, then once per packet that arrives while closing.
    var closeFrameOwed = false
    /// IDs given to the client that it has not retired, with their sequence numbers; the first is ``localID``.
    var localIDs: [(sequence: UInt64, id: ConnectionID)]
    var nextLocalIDSequence: UInt64 = 1
    /// NEW_CONNECTION_ID frames to send.
    var pendingNewIDs: [NewConnectionIDFrame] = []
    /// Makes a new ID routed to this connection, with its stateless reset token (set by the endpoint).
    var issueConnectionID: (() -> (ConnectionID, StatelessResetToken))?
    /// Stateless reset tokens of the peer's IDs: a datagram ending in one means the peer lost the connection.
    var peerResetTokens: Set<StatelessResetToken> = []
    /// The client's IDs are bounded by our active_connection_id_limit; this bounds the tokens kept.
    static let maxPeerResetTokens = 8
    /// Tells the endpoint a token to recognise (set by the endpoint).
    var learnPeerResetToken: ((StatelessResetToken) -> Void)?
    /// Stops routing an ID the client retired (set by the endpoint).
    var retireLocalID: ((ConnectionID) -> Void)?
    /// Makes a NEW_TOKEN token for the client's address (set by the endpoint).
    var makeAddressToken: (() -> [UInt8])?
    /// A NEW_TOKEN frame to send.
    var pendingAddressToken: ByteBuffer?
    /// Picks the application for the negotiated ALPN once the handshake completes.
    var makeApplication: ((String?) -> QUICApplication?)?
    /// Asks the endpoint to send what the application queued outside of a read.
    var wakeUp: (() -> Void)?
    var lastReceivedAt: NIODeadline
    /// The connection's qlog, when `quic.qlog_dir` is set.
    var qlog: QLog?
    /// Some packet from the client decrypted: until then the connection may be a forgery to forget at once.
    var hasAuthenticatedPacket = false
    /// The client's handshake steps: its IDs before and after a Retry, and the token it sends.
    var client: ClientHandshakeState?
    let allocator: ByteBufferAllocator

    init(
        role: Role = .server, settings: ConnectionSettings, initialDestination: ConnectionID, localID: ConnectionID,
        peerID: ConnectionID, remoteAddress: SocketAddress, handshake: QUICHandshake, now: NIODeadline,
        allocator: ByteBufferAllocator
    ) {
        self.role = role
        self.settings = settings
        self.initialDestination = initialDestination
        self.localID = localID
        self.localIDs = [(0, localID)]
        self.peerID = peerID
        self.remoteAddress = remoteAddress
        self.acceptedFrom = remoteAddress
        self.handshake = handshake
        self.congestion = CongestionController(settings.congestionControl, maxDatagramSize: settings.maxDatagramSize)
        self.pacer = Pacer(maxDatagramSize: settings.maxDatagramSize)
        self.maxPeerBidirectional = settings.maxBidirectionalStreams
        self.maxPeerUnidirectional = settings.maxUnidirectionalStreams
        // Stream IDs: bit 0 is the initiator (0 for the client), bit 1 the direction (RFC 9000 §2.1).
        let peerBit: UInt64 = role == .server ? 0 : 1
        nextPeerBidirectional = peerBit
        nextPeerUnidirectional = 2 | peerBit
        nextLocalBidirectional = peerBit ^ 1
        nextLocalUnidirectional = 2 | (peerBit ^ 1)
        self.receiveLimit = settings.connectionWindow
        self.lastReceivedAt = now
        self.allocator = allocator
        // Only the server must earn the right to send by the client's proof of its address.
        addressValidated = role == .client
        installInitialKeys()
    }

    /// Initial keys from the client's destination ID: at the start, and again on the client after a Retry.
    func installInitialKeys() {
        let keys = QUICInitialKeys.derive(destinationConnectionID: initialDestination.bytes)
        spaces[0].readKey = role == .server ? keys.client : keys.server
        spaces[0].writeKey = role == .server ? keys.server : keys.client
    }

    /// The transport parameters this server sends, which depend on the IDs of this connection.
    /// `retry` holds the ID of the client's very first Initial and the one our Retry gave it, when there was one:
    /// the client checks both, so a Retry cannot be forged on the path (RFC 9000 §7.3).
    static func localParameters(
        settings: ConnectionSettings, initialDestination: ConnectionID, localID: ConnectionID,
        resetToken: StatelessResetToken, retry: (original: ConnectionID, source: ConnectionID)?
    ) -> TransportParameters {
        var parameters = localParameters(settings: settings, localID: localID)
        parameters.statelessResetToken = resetToken
        parameters.originalDestinationConnectionID = retry?.original ?? initialDestination
        parameters.retrySourceConnectionID = retry?.source
        return parameters
    }

    /// The transport parameters both sides send: the limits of `settings`, and the ID this side chose.
    static func localParameters(settings: ConnectionSettings, localID: ConnectionID) -> TransportParameters {
        var parameters = TransportParameters()
        parameters.initialSourceConnectionID = localID
        parameters.maxIdleTimeout = UInt64(settings.idleTimeout.nanoseconds / 1_000_000)
        parameters.maxUDPPayloadSize = UInt64(settings.maxDatagramSize)
        parameters.initialMaxData = settings.connectionWindow
        parameters.initialMaxStreamDataBidiLocal = settings.streamWindow
        parameters.initialMaxStreamDataBidiRemote = settings.streamWindow
        parameters.initialMaxStreamDataUni = settings.streamWindow
        parameters.initialMaxStreamsBidi = settings.maxBidirectionalStreams
        parameters.initialMaxStreamsUni = settings.maxUnidirectionalStreams
        parameters.maxAckDelay = UInt64(settings.maxAckDelay.nanoseconds / 1_000_000)
        parameters.activeConnectionIDLimit = 4
        parameters.maxDatagramFrameSize = settings.maxDatagramFrameSize
        return parameters
    }

    public var isClosed: Bool { state == .closed }

    /// Whether the connection is closing or closed: it carries no more data.
    public var isClosing: Bool {
        switch state {
        case .handshaking, .established: false
        case .closing, .draining, .closed: true
        }
    }

    /// The qlog name of a packet number space's packets.
    static func packetTypeName(space index: Int) -> String {
        index == 0 ? "initial" : index == 1 ? "handshake" : "1RTT"
    }

    /// Whether the handshake completed since the last call, for the endpoint to log it once.
    func takeEstablishedEvent() -> Bool {
        defer { establishedEventPending = false }
        return establishedEventPending
    }

    /// What the handshake negotiated: version, cipher, key-exchange group, ALPN, SNI.
    public var sessionInfo: TLSSessionInfo { handshake.sessionInfo }

    /// The idle timeout in force: the smaller of both sides' values (RFC 9000 §10.1).
    var idleTimeout: TimeAmount {
        let peer = peerParameters?.maxIdleTimeout ?? 0
        guard peer > 0 else { return settings.idleTimeout }
        return min(settings.idleTimeout, .milliseconds(Int64(peer)))
    }

    // MARK: Application interface

    /// A stream's writer waits once this much is queued and unsent, and goes on when it is down to
    /// ``sendBufferLowWater``: enough to fill a large congestion window, bounded per stream.
    static let sendBufferHighWater = 1 << 20
    static let sendBufferLowWater = 256 << 10

    /// Queues `data` on a stream; `fin` ends our side of it.
    @discardableResult
    public func write(_ data: ByteBuffer, toStream id: UInt64, fin: Bool = false) -> StreamWriteResult {
        guard var stream = streams[id], !stream.sendClosed, !stream.send.isFinished else { return .closed }
        stream.send.append(data)
        if fin { stream.send.finish() }
        streams[id] = stream
        scheduleSending(id)
        guard stream.send.queuedBytes > Self.sendBufferHighWater, !fin else { return .accepted }
        if !blockedWriters.contains(id) { blockedWriters.append(id) }
        return .full
    }

    /// Opens a stream only this side sends on (for HTTP/3's control and QPACK streams); nil when the peer
    /// allows no more.
    public func openUnidirectionalStream() -> UInt64? {
        guard nextLocalUnidirectional >> 2 < peerMaxUnidirectional else { return nil }
        let id = nextLocalUnidirectional
        nextLocalUnidirectional += 4
        let limit = peerParameters?.initialMaxStreamDataUni ?? 0
        streams[id] = QUICStream(id: id, isLocal: true, receiveWindow: 0, sendLimit: limit)
        return id
    }

    /// Opens a stream both sides send on (a request, an echo); nil until the handshake completes, or when the
    /// peer allows no more.
    public func openBidirectionalStream() -> UInt64? {
        guard canOpenBidirectionalStream else { return nil }
        let id = nextLocalBidirectional
        nextLocalBidirectional += 4
        let limit = peerParameters?.initialMaxStreamDataBidiRemote ?? 0
        streams[id] = QUICStream(id: id, isLocal: true, receiveWindow: settings.streamWindow, sendLimit: limit)
        return id
    }

    /// Whether ``openBidirectionalStream()`` would open a stream now.
    public var canOpenBidirectionalStream: Bool {
        state == .established && nextLocalBidirectional >> 2 < peerMaxBidirectional
    }

    /// Whether this side opened stream `id`.
    func isLocal(_ id: UInt64) -> Bool {
        (id & 0x1 == 0) == (role == .client)
    }

    /// Holds back (false) or resumes (true) delivery of a stream's data. While held, the data stays in the
    /// stream's buffer and the peer gets no more credit, so a slow consumer slows the sender instead of
    /// making the server buffer.
    public func setReceiving(_ receiving: Bool, onStream id: UInt64) {
        guard let stream = streams[id], stream.isPaused == receiving else { return }
        streams[id]!.isPaused = !receiving
        guard receiving else { return }
        deliver(id)
        sendSoon()
    }

    /// Stops reading a stream (STOP_SENDING): the peer is asked to stop, and whatever arrives is dropped.
    public func stopReading(_ id: UInt64, errorCode: UInt64) {
        guard var stream = streams[id], !stream.finDelivered, !stream.readAbandoned else { return }
        stream.readAbandoned = true
        stream.pendingStopSending = errorCode
        stream.sendsLimitUpdate = false
        consume(bytes: stream.receive.discardAll())
        if stream.finalSize == stream.receive.readOffset { stream.finDelivered = true }
        streams[id] = stream
        scheduleSending(id)
        retireIfFinished(id)
    }

    /// Asks for the datagrams of data queued outside of a read (from a timer, a file read, an upstream) to be
    /// built and sent; calls made before that happens share one send.
    public func sendSoon() {
        guard !wakePending else { return }
        wakePending = true
        wakeUp?()
    }

    /// Tells writers that waited whose streams have drained below the low-water mark, or closed.
    func notifyWriters() {
        guard !blockedWriters.isEmpty else { return }
        var index = 0
        while index < blockedWriters.count {
            let id = blockedWriters[index]
            if let stream = streams[id], !stream.sendClosed, stream.send.queuedBytes > Self.sendBufferLowWater {
                index += 1
                continue
            }
            blockedWriters.remove(at: index)
            application?.streamWritable(id, connection: self)
        }
    }

    /// Queues an unreliable datagram (RFC 9221): sent once, within the congestion window, never again if lost.
    /// Returns false when the client does not accept datagrams or this one is larger than it allows.
    @discardableResult
    public func sendDatagram(_ data: ByteBuffer) -> Bool {
        let limit = peerParameters?.maxDatagramFrameSize ?? 0
        let frameSize = UInt64(Frame.datagramHeaderSize(length: data.readableBytes) + data.readableBytes)
        guard frameSize <= limit, frameSize <= UInt64(settings.maxDatagramSize - 64),
            pendingDatagrams.count < Self.maxPendingDatagrams
        else { return false }
        pendingDatagrams.append(data)
        return true
    }

    /// Datagrams waiting for room beyond this many are refused: they are worth little once late.
    static let maxPendingDatagrams = 256

    /// Abandons our side of a stream (RESET_STREAM).
    public func resetStream(_ id: UInt64, errorCode: UInt64) {
        guard var stream = streams[id], !stream.sendClosed else { return }
        stream.sendClosed = true
        stream.pendingReset = (errorCode, stream.send.sendOffset)
        streams[id] = stream
        scheduleSending(id)
    }

    /// Closes the connection with an application error code once everything written to its streams has been
    /// delivered: the graceful end of a connection whose last responses are still on their way.
    public func closeAfterSending(errorCode: UInt64, reason: String) {
        closeWhenSent = ConnectionCloseFrame(
            isApplication: true, errorCode: errorCode, frameType: 0, reason: ByteBuffer(string: reason))
        sendSoon()
    }

    /// Whether no stream has data unsent or unacknowledged.
    var streamsSettled: Bool {
        streams.values.allSatisfy { ($0.sendClosed || !$0.send.hasPending) && $0.inFlightFrames == 0 }
    }

    /// Closes the connection with an application error code (RFC 9000 §10.2).
    public func close(errorCode: UInt64, reason: String, now: NIODeadline = .now()) {
        close(
            ConnectionCloseFrame(
                isApplication: true, errorCode: errorCode, frameType: 0, reason: ByteBuffer(string: reason)),
            now: now)
        // Outside a read, nothing else would send the CONNECTION_CLOSE.
        sendSoon()
    }

    /// Starts a graceful close: the application's, once the handshake is done; else a transport close.
    func shutdown(now: NIODeadline) {
        guard case .established = state, let application else { return close(.noError, now: now) }
        application.shutdown(self)
    }

    /// Closes the connection because the peer broke the protocol (RFC 9000 §10.2).
    func close(_ error: TransportError, now: NIODeadline) {
        close(ConnectionCloseFrame(error), now: now)
    }

    func scheduleSending(_ id: UInt64) {
        guard streams[id]?.isScheduled == false else { return }
        streams[id]!.isScheduled = true
        sendingStreams.append(id)
    }

    // MARK: Closing

    func close(_ frame: ConnectionCloseFrame, now: NIODeadline) {
        switch state {
        case .closing, .draining, .closed: return
        case .handshaking, .established: break
        }
        qlog?.closed(reason: "error \(frame.errorCode): \(String(buffer: frame.reason))", now: now)
        closeReason = closeReason ?? .local(QUICCloseReason.Error(frame))
        closeFrame = frame
        closeFrameOwed = true
        state = .closing(until: now + .nanoseconds(3 * currentProbeTimeout.nanoseconds))
        application?.connectionClosed(self)
        application = nil
    }

    /// The peer answered with a stateless reset: it has no state for this connection (RFC 9000 §10.3.1).
    func statelessResetReceived(now: NIODeadline) {
        qlog?.closed(reason: "stateless reset", now: now)
        closeReason = closeReason ?? .statelessReset
        enterDraining(now: now)
    }

    func enterDraining(now: NIODeadline) {
        switch state {
        case .draining, .closed: return
        default: break
        }
        state = .draining(until: now + .nanoseconds(3 * currentProbeTimeout.nanoseconds))
        qlog?.closed(reason: "closed by the peer", now: now)
        application?.connectionClosed(self)
        application = nil
    }

    /// Called when the connection leaves the table for good.
    func finish() {
        qlog?.closed(reason: "finished", now: .now())
        qlog = nil
        state = .closed
        application?.connectionClosed(self)
        application = nil
    }
}
