import NIOCore
import NIOHTTP1
import VelocityQUIC

/// HTTP/3 (RFC 9114) on one QUIC connection, client side: the control and QPACK streams of both peers, and
/// requests whose responses go to a ``HTTP3ResponseHandler`` as they stream in. Framing, QPACK and SETTINGS
/// are the server's code. Called on the QUIC socket's event loop only.
public final class HTTP3ClientConnection: QUICApplication {
    public static let alpn = "h3"

    /// Where a response is (RFC 9114 §4.1).
    private enum Phase {
        case head
        /// Its HEADERS need QPACK insertions still on their way; the section waits here.
        case blocked(ByteBuffer)
        case body
        /// Trailers arrived: only the stream's end may follow.
        case trailers(HTTPHeaders)
    }

    private final class Request {
        let handler: HTTP3ResponseHandler
        var reader: HTTP3FrameReader
        var phase = Phase.head
        var contentLength: UInt64?
        var bodyBytes: UInt64 = 0

        init(handler: HTTP3ResponseHandler, maxHeadersSize: Int) {
            self.handler = handler
            reader = HTTP3FrameReader(maxHeadersSize: maxHeadersSize)
        }
    }

    private let settings: HTTP3Settings
    private var decoder: QPACKDecoder
    private var encoder = QPACKEncoder()
    private var requests: [UInt64: Request] = [:]
    private var peerStreams = HTTP3PeerStreams()
    private var peerControl: HTTP3FrameReader?
    private var peerSettings: HTTP3Settings?
    private var localEncoder: UInt64?
    private var localDecoder: UInt64?
    /// The QUIC connection underneath, from the handshake's end on.
    public private(set) weak var connection: QUICConnection?
    /// The server's GOAWAY: request streams from this ID on will not be processed.
    private var goawayID: UInt64?
    private let allocator = ByteBufferAllocator()

    /// A 4 KiB dynamic table each way, up to 16 streams blocked on it, and 64 KiB of response header fields.
    public init() {
        var settings = HTTP3Settings()
        settings.qpackMaxTableCapacity = 4096
        settings.qpackBlockedStreams = 16
        settings.maxFieldSectionSize = 64 * 1024
        self.settings = settings
        decoder = QPACKDecoder(
            maxTableCapacity: Int(settings.qpackMaxTableCapacity),
            maxBlockedStreams: Int(settings.qpackBlockedStreams),
            maxFieldSectionSize: Int(settings.maxFieldSectionSize!))
    }

    /// Twice the field section limit, as on the server.
    private var maxHeadersSize: Int { 2 * Int(settings.maxFieldSectionSize ?? 1 << 19) }

    /// Starts a connection that runs HTTP/3: the future succeeds once the handshake is done and the control
    /// streams are opened. Call on `endpoint`'s event loop. `configuration`'s TLS context must offer `h3`,
    /// and its settings allow the server no bidirectional streams (HTTP/3 has none from servers).
    public static func connect(
        using endpoint: QUICClientEndpoint, to address: SocketAddress, serverName: String,
        configuration: QUICClientConfiguration
    ) -> EventLoopFuture<HTTP3ClientConnection> {
        var configuration = configuration
        configuration.settings.maxBidirectionalStreams = 0
        let application = HTTP3ClientConnection()
        return endpoint.connect(
            to: address, serverName: serverName, configuration: configuration,
            makeApplication: { alpn in alpn == Self.alpn ? application : nil }
        ).assumeIsolated().map { _ in application }.nonisolated()
    }

    // MARK: Requests

    /// Whether a new request may start: the connection is open, the server sent no GOAWAY, and its stream
    /// limit leaves room.
    public var acceptsRequests: Bool {
        guard let connection, !connection.isClosing, goawayID == nil else { return false }
        return connection.canOpenBidirectionalStream
    }

    /// Sends a request's head on a new stream and returns the stream's ID; nil when no request may start
    /// (see ``acceptsRequests``). With `endStream` the request has no body; otherwise ``writeBody(_:streamID:)``
    /// and ``endRequest(streamID:trailers:)`` follow.
    public func sendRequest(
        _ head: HTTPRequestHead, scheme: String = "https", endStream: Bool, handler: HTTP3ResponseHandler
    ) -> UInt64? {
        guard goawayID == nil, let connection, let id = connection.openBidirectionalStream() else { return nil }
        requests[id] = Request(handler: handler, maxHeadersSize: maxHeadersSize)
        _ = writeFields(HTTP3Message.requestFields(head, scheme: scheme), streamID: id, fin: endStream)
        connection.sendSoon()
        return id
    }

    /// Sends the next piece of a request body as a DATA frame.
    @discardableResult
    public func writeBody(_ bytes: ByteBuffer, streamID id: UInt64) -> StreamWriteResult {
        guard let connection, bytes.readableBytes > 0 else { return connection == nil ? .closed : .accepted }
        var header = allocator.buffer(capacity: 9)
        header.writeHTTP3FrameHeader(type: HTTP3FrameType.data, length: bytes.readableBytes)
        connection.write(header, toStream: id)
        let result = connection.write(bytes, toStream: id)
        connection.sendSoon()
        return result
    }

    /// Ends a request body, with trailers if given.
    public func endRequest(streamID id: UInt64, trailers: HTTPHeaders? = nil) {
        guard let connection else { return }
        if let trailers, !trailers.isEmpty {
            _ = writeFields(HTTP3Message.trailerFields(trailers), streamID: id, fin: true)
        } else {
            connection.write(ByteBuffer(), toStream: id, fin: true)
        }
        connection.sendSoon()
    }

    /// Abandons a request both ways (H3_REQUEST_CANCELLED); its handler hears nothing more.
    public func cancel(streamID id: UInt64) {
        guard requests.removeValue(forKey: id) != nil else { return }
        decoder.cancelStream(id)
        sendDecoderInstructions()
        connection?.resetStream(id, errorCode: HTTP3ErrorCode.requestCancelled.rawValue)
        connection?.stopReading(id, errorCode: HTTP3ErrorCode.requestCancelled.rawValue)
        connection?.sendSoon()
    }

    /// Closes the connection without error (H3_NO_ERROR); requests still open fail.
    public func close() {
        connection?.close(errorCode: HTTP3ErrorCode.noError.rawValue, reason: "")
    }

    private func writeFields(_ fields: [QPACKField], streamID id: UInt64, fin: Bool) -> StreamWriteResult {
        var section = allocator.buffer(capacity: 256)
        encoder.encode(fields, streamID: id, into: &section)
        var frame = allocator.buffer(capacity: section.readableBytes + 9)
        frame.writeHTTP3FrameHeader(type: HTTP3FrameType.headers, length: section.readableBytes)
        frame.writeImmutableBuffer(section)
        // Insertions go out before the section that may refer to them.
        sendEncoderInstructions()
        return connection?.write(frame, toStream: id, fin: fin) ?? .closed
    }

    // MARK: QUICApplication

    public func started(_ connection: QUICConnection) {
        self.connection = connection
        guard let control = connection.openUnidirectionalStream(),
            let encoderStream = connection.openUnidirectionalStream(),
            let decoderStream = connection.openUnidirectionalStream()
        else {
            return fail(HTTP3Error(code: .streamCreationError, reason: "the server allows too few streams"))
        }
        localEncoder = encoderStream
        localDecoder = decoderStream
        var buffer = allocator.buffer(capacity: 64)
        buffer.writeQUICVarInt(HTTP3StreamType.control)
        buffer.writeHTTP3Settings(settings)
        connection.write(buffer, toStream: control)
        connection.write(ByteBuffer(integer: UInt8(HTTP3StreamType.qpackEncoder)), toStream: encoderStream)
        connection.write(ByteBuffer(integer: UInt8(HTTP3StreamType.qpackDecoder)), toStream: decoderStream)
    }

    public func received(_ data: ByteBuffer, onStream id: UInt64, fin: Bool, connection: QUICConnection) {
        do throws(HTTP3Error) {
            if id & 0x2 == 0 {
                try receivedResponse(data, onStream: id, fin: fin)
            } else {
                try receivedPeerStream(data, onStream: id, fin: fin)
            }
            sendDecoderInstructions()
        } catch {
            fail(error)
        }
    }

    public func received(datagram: ByteBuffer, connection: QUICConnection) {}

    public func streamReset(_ id: UInt64, errorCode: UInt64, connection: QUICConnection) {
        if let request = requests.removeValue(forKey: id) {
            decoder.cancelStream(id)
            sendDecoderInstructions()
            request.handler.requestFailed(HTTP3StreamReset(errorCode: errorCode), streamID: id)
        } else if let kind = peerStreams.kind(of: id), kind != .unknown {
            fail(HTTP3Error(code: .closedCriticalStream, reason: "a critical stream was reset"))
        }
    }

    public func streamWritable(_ id: UInt64, connection: QUICConnection) {
        requests[id]?.handler.requestWritable(streamID: id)
    }

    public func connectionClosed(_ connection: QUICConnection) {
        let open = requests
        requests = [:]
        let reason = connection.closeReason ?? .idleTimeout
        for (id, request) in open.sorted(by: { $0.key < $1.key }) {
            request.handler.requestFailed(reason, streamID: id)
        }
    }

    // MARK: Responses

    private func receivedResponse(_ data: ByteBuffer, onStream id: UInt64, fin: Bool) throws(HTTP3Error) {
        guard let request = requests[id] else { return }
        request.reader.append(data)
        try process(request, id: id)
        guard requests[id] === request, fin else { return }
        guard request.reader.isAtFrameBoundary else {
            throw HTTP3Error(code: .frameError, reason: "a response stream ended inside a frame")
        }
        requests[id] = nil
        switch request.phase {
        case .head, .blocked:
            request.handler.requestFailed(
                HTTP3ClientError(HTTP3Error(code: .messageError, reason: "the stream ended before a response")),
                streamID: id)
        case .body:
            guard request.contentLength.map({ $0 == request.bodyBytes }) ?? true else {
                return reject(request, id: id, "less body than content-length")
            }
            request.handler.responseEnd(trailers: nil, streamID: id)
        case .trailers(let trailers):
            request.handler.responseEnd(trailers: trailers, streamID: id)
        }
    }

    /// Reads the frames that have arrived on a response stream and hands what they hold to its handler.
    private func process(_ request: Request, id: UInt64) throws(HTTP3Error) {
        while requests[id] === request {
            if case .blocked = request.phase { return }
            guard let frame = try request.reader.next() else { return }
            switch (frame, request.phase) {
            case (.headers(let section), .head):
                try decodeHead(section, of: request, id: id)
            case (.data(let bytes), .body):
                request.bodyBytes += UInt64(bytes.readableBytes)
                if let length = request.contentLength, request.bodyBytes > length {
                    return reject(request, id: id, "more body than content-length")
                }
                request.handler.responseBody(bytes, streamID: id)
            case (.headers(let section), .body):
                guard let fields = try decode(section, id: id) else {
                    throw HTTP3Error(
                        code: HTTP3ErrorCode(rawValue: QPACKError.decompressionFailed), reason: "blocked trailers")
                }
                request.phase = .trailers(try HTTP3Message.trailers(fields))
            case (.pushPromise, _):
                throw HTTP3Error(code: .idError, reason: "PUSH_PROMISE without MAX_PUSH_ID")
            case (.data, _), (.headers, _), (.settings, _), (.goaway, _), (.maxPushID, _), (.cancelPush, _):
                throw HTTP3Error(code: .frameUnexpected, reason: "frame not allowed on a response stream")
            }
        }
    }

    private func decodeHead(_ section: ByteBuffer, of request: Request, id: UInt64) throws(HTTP3Error) {
        guard let fields = try decode(section, id: id) else {
            request.phase = .blocked(section)
            connection?.setReceiving(false, onStream: id)
            return
        }
        let head: HTTPResponseHead
        do throws(HTTP3Error) {
            (head, request.contentLength) = try HTTP3Message.responseHead(fields)
        } catch {
            return reject(request, id: id, error.reason)
        }
        // Interim responses (1xx) precede the final one.
        guard head.status.code >= 200 else { return }
        request.phase = .body
        request.handler.responseHead(head, streamID: id)
    }

    /// A decoded field section; nil when it waits for insertions. A section too large is a malformed response.
    private func decode(_ section: ByteBuffer, id: UInt64) throws(HTTP3Error) -> [QPACKField]? {
        do throws(QPACKError) {
            switch try decoder.decodeFieldSection(section, streamID: id) {
            case .fields(let fields): return fields
            case .blocked: return nil
            }
        } catch {
            throw HTTP3Error(code: HTTP3ErrorCode(rawValue: error.code), reason: error.reason)
        }
    }

    /// A malformed response is a stream error (§4.1.2): the stream is cancelled and the handler told.
    private func reject(_ request: Request, id: UInt64, _ reason: String) {
        requests[id] = nil
        connection?.resetStream(id, errorCode: HTTP3ErrorCode.messageError.rawValue)
        connection?.stopReading(id, errorCode: HTTP3ErrorCode.messageError.rawValue)
        request.handler.requestFailed(HTTP3ClientError(HTTP3Error(code: .messageError, reason: reason)), streamID: id)
    }

    /// The encoder stream brought insertions a blocked response was waiting for.
    private func unblock(_ id: UInt64) throws(HTTP3Error) {
        guard let request = requests[id], case .blocked(let section) = request.phase else { return }
        request.phase = .head
        try decodeHead(section, of: request, id: id)
        try process(request, id: id)
        connection?.setReceiving(true, onStream: id)
    }

    // MARK: The server's unidirectional streams

    private func receivedPeerStream(_ data: ByteBuffer, onStream id: UInt64, fin: Bool) throws(HTTP3Error) {
        guard let (kind, bytes) = try peerStreams.classify(data, onStream: id) else { return }
        if fin, kind != .unknown {
            throw HTTP3Error(code: .closedCriticalStream, reason: "the server ended its \(kind) stream")
        }
        switch kind {
        case .control:
            var reader = peerControl ?? HTTP3FrameReader(maxHeadersSize: maxHeadersSize)
            reader.append(bytes)
            while let frame = try reader.next() { try controlFrame(frame) }
            peerControl = reader
        case .encoder:
            let ready: [UInt64]
            do throws(QPACKError) {
                ready = try decoder.processEncoderStream(bytes)
            } catch {
                throw HTTP3Error(code: HTTP3ErrorCode(rawValue: error.code), reason: error.reason)
            }
            for streamID in ready { try unblock(streamID) }
        case .decoder:
            do throws(QPACKError) {
                try encoder.processDecoderStream(bytes)
            } catch {
                throw HTTP3Error(code: HTTP3ErrorCode(rawValue: error.code), reason: error.reason)
            }
        case .push:
            throw HTTP3Error(code: .idError, reason: "a push stream without MAX_PUSH_ID")
        case .unknown:
            // Unknown types, GREASE among them, are read no further (§6.2).
            peerStreams.forget(id)
            connection?.stopReading(id, errorCode: HTTP3ErrorCode.streamCreationError.rawValue)
        }
    }

    private func controlFrame(_ frame: HTTP3Frame) throws(HTTP3Error) {
        switch frame {
        case .settings(let settings):
            guard peerSettings == nil else {
                throw HTTP3Error(code: .frameUnexpected, reason: "a second SETTINGS frame")
            }
            peerSettings = settings
            encoder.applyPeerSettings(
                maxTableCapacity: settings.qpackMaxTableCapacity, maxBlockedStreams: settings.qpackBlockedStreams)
            sendEncoderInstructions()
        case _ where peerSettings == nil:
            throw HTTP3Error(code: .missingSettings, reason: "the control stream must start with SETTINGS")
        case .goaway(let id):
            try goaway(id)
        case .cancelPush:
            break
        case .maxPushID, .data, .headers, .pushPromise:
            throw HTTP3Error(code: .frameUnexpected, reason: "frame not allowed on the server's control stream")
        }
    }

    /// The server is going away (§5.2): requests from `id` on were not processed and fail as retryable.
    private func goaway(_ id: UInt64) throws(HTTP3Error) {
        guard id & 0x3 == 0, id <= goawayID ?? .max else {
            throw HTTP3Error(code: .idError, reason: "GOAWAY with an invalid or larger stream ID")
        }
        goawayID = id
        let rejected = requests.keys.filter { $0 >= id }.sorted()
        for streamID in rejected {
            guard let request = requests.removeValue(forKey: streamID) else { continue }
            request.handler.requestFailed(
                HTTP3ClientError(HTTP3Error(code: .requestRejected, reason: "after the server's GOAWAY")),
                streamID: streamID)
        }
    }

    // MARK: Connection-wide

    private func sendEncoderInstructions() {
        let bytes = encoder.takeEncoderStreamBytes()
        guard bytes.readableBytes > 0, let localEncoder else { return }
        connection?.write(bytes, toStream: localEncoder)
    }

    private func sendDecoderInstructions() {
        let bytes = decoder.takeDecoderStreamBytes()
        guard bytes.readableBytes > 0, let localDecoder else { return }
        connection?.write(bytes, toStream: localDecoder)
    }

    /// A connection error (§8): the connection closes with the code, and every request fails.
    private func fail(_ error: HTTP3Error) {
        connection?.close(errorCode: error.code.rawValue, reason: error.reason)
    }
}
