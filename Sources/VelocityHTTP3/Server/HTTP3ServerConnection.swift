import NIOCore
import NIOHTTP1
import VelocityQUIC

/// HTTP/3 (RFC 9114) on one QUIC connection, server side: the control and QPACK streams of both peers, and a
/// ``HTTP3StreamChannel`` per request stream whose pipeline the initializer sets up. Framing, QPACK and the
/// protocol's rules live here; requests and responses travel through the channels as HTTP/1-shaped parts.
///
/// Called on the QUIC socket's event loop only.
public final class HTTP3ServerConnection: QUICApplication {
    public static let alpn = "h3"

    /// What the server advertises and how request channels are set up.
    public struct Configuration {
        var settings: HTTP3Settings
        /// Sets up a request channel's pipeline before its request head arrives.
        public var initializeStream: (HTTP3StreamChannel) -> EventLoopFuture<Void>

        /// Defaults suit a general-purpose server: a 4 KiB dynamic table each way, up to 16 streams blocked
        /// on it, and 64 KiB of request header fields (the HTTP/1.1 limit). With `extendedConnect`, clients may
        /// send extended CONNECT (RFC 9220), whose channels carry ``HTTP3StreamChannel/connectProtocol``.
        public init(
            datagrams: Bool, extendedConnect: Bool = false,
            initializeStream: @escaping (HTTP3StreamChannel) -> EventLoopFuture<Void>
        ) {
            var settings = HTTP3Settings()
            settings.qpackMaxTableCapacity = 4096
            settings.qpackBlockedStreams = 16
            settings.maxFieldSectionSize = 64 * 1024
            settings.h3Datagram = datagrams
            settings.enableConnectProtocol = extendedConnect
            self.settings = settings
            self.initializeStream = initializeStream
        }
    }

    /// Where a request stream is in its message (RFC 9114 §4.1).
    private enum RequestPhase {
        case head
        /// Its HEADERS need QPACK insertions still on their way; the section waits here.
        case blocked(ByteBuffer)
        case body
        /// Nothing more may arrive; the channel may still be writing.
        case ended
    }

    private final class RequestStream {
        var reader: HTTP3FrameReader
        var phase = RequestPhase.head
        var finReceived = false
        var channel: HTTP3StreamChannel?
        var contentLength: UInt64?
        var bodyBytes: UInt64 = 0
        var responseEnded = false

        var requestEnded: Bool {
            if case .ended = phase { true } else { false }
        }

        init(maxHeadersSize: Int) {
            reader = HTTP3FrameReader(maxHeadersSize: maxHeadersSize)
        }
    }

    /// A stream the client opened to send only: its type is its first varint (§6.2).
    private enum PeerStream {
        case untyped(ByteBuffer)
        case control(HTTP3FrameReader)
        case encoder
        case decoder
        /// Push streams (which a client may not open) and unknown types are refused or dropped.
        case ignored
    }

    private let configuration: Configuration
    private let parent: any Channel
    private var decoder: QPACKDecoder
    private var encoder = QPACKEncoder()
    private var requests: [UInt64: RequestStream] = [:]
    private var peerStreams: [UInt64: PeerStream] = [:]
    private var hasPeerControl = false
    private var hasPeerEncoder = false
    private var hasPeerDecoder = false
    private var peerSettings: HTTP3Settings?
    private var localControl: UInt64?
    private var localEncoder: UInt64?
    private var localDecoder: UInt64?
    private weak var connection: QUICConnection?
    /// The highest request stream seen, and the first one refused after GOAWAY.
    private var highestRequestID: UInt64?
    private var goawayID: UInt64?

    public init(configuration: Configuration, parent: any Channel) {
        self.configuration = configuration
        self.parent = parent
        let settings = configuration.settings
        decoder = QPACKDecoder(
            maxTableCapacity: Int(clamping: settings.qpackMaxTableCapacity),
            maxBlockedStreams: Int(clamping: settings.qpackBlockedStreams),
            maxFieldSectionSize: Int(clamping: settings.maxFieldSectionSize ?? UInt64(Int.max)))
    }

    /// The largest HEADERS frame read: twice the field section limit, so that a section just over it (which
    /// can take fewer bytes encoded than its counted size) gets a 431 rather than a connection error.
    private var maxHeadersSize: Int { 2 * Int(clamping: configuration.settings.maxFieldSectionSize ?? 1 << 19) }

    // MARK: QUICApplication

    public func started(_ connection: QUICConnection) {
        self.connection = connection
        guard let control = connection.openUnidirectionalStream(),
            let encoderStream = connection.openUnidirectionalStream(),
            let decoderStream = connection.openUnidirectionalStream()
        else {
            return fail(HTTP3Error(code: .streamCreationError, reason: "the client allows too few streams"))
        }
        localControl = control
        localEncoder = encoderStream
        localDecoder = decoderStream
        var buffer = parent.allocator.buffer(capacity: 64)
        buffer.writeQUICVarInt(HTTP3StreamType.control)
        buffer.writeHTTP3Settings(configuration.settings)
        connection.write(buffer, toStream: control)
        connection.write(ByteBuffer(integer: UInt8(HTTP3StreamType.qpackEncoder)), toStream: encoderStream)
        connection.write(ByteBuffer(integer: UInt8(HTTP3StreamType.qpackDecoder)), toStream: decoderStream)
    }

    public func received(_ data: ByteBuffer, onStream id: UInt64, fin: Bool, connection: QUICConnection) {
        do throws(HTTP3Error) {
            if id & 0x2 == 0 {
                try receivedRequest(data, onStream: id, fin: fin)
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
        if let request = requests[id] {
            decoder.cancelStream(id)
            sendDecoderInstructions()
            request.phase = .ended
            request.channel?.closed(by: HTTP3StreamReset(errorCode: errorCode))
            if !request.responseEnded {
                connection.resetStream(id, errorCode: HTTP3ErrorCode.requestCancelled.rawValue)
            }
            forget(id, cancelling: false)
        } else if case .ignored? = peerStreams[id] {
            peerStreams[id] = nil
        } else if peerStreams[id] != nil {
            fail(HTTP3Error(code: .closedCriticalStream, reason: "a critical stream was reset"))
        }
    }

    /// Graceful shutdown (§5.2): GOAWAY names the first request that will not be served; the connection closes
    /// once the requests before it are answered.
    public func shutdown(_ connection: QUICConnection) {
        guard goawayID == nil, let localControl else {
            return connection.close(errorCode: HTTP3ErrorCode.noError.rawValue, reason: "")
        }
        let id = highestRequestID.map { $0 + 4 } ?? 0
        goawayID = id
        var frame = parent.allocator.buffer(capacity: 16)
        frame.writeHTTP3Goaway(id)
        connection.write(frame, toStream: localControl)
        closeIfDrained()
    }

    private func closeIfDrained() {
        guard goawayID != nil, requests.isEmpty else { return }
        connection?.closeAfterSending(errorCode: HTTP3ErrorCode.noError.rawValue, reason: "")
    }

    public func connectionClosed(_ connection: QUICConnection) {
        let open = requests
        requests = [:]
        for request in open.values { request.channel?.closed(by: nil) }
    }

    public func streamWritable(_ id: UInt64, connection: QUICConnection) {
        requests[id]?.channel?.becameWritable()
    }

    // MARK: Request streams

    private func receivedRequest(_ data: ByteBuffer, onStream id: UInt64, fin: Bool) throws(HTTP3Error) {
        let request: RequestStream
        if let existing = requests[id] {
            request = existing
        } else {
            if let goawayID, id >= goawayID {
                // Refused after GOAWAY: the client may retry it elsewhere (§5.2).
                connection?.resetStream(id, errorCode: HTTP3ErrorCode.requestRejected.rawValue)
                connection?.stopReading(id, errorCode: HTTP3ErrorCode.requestRejected.rawValue)
                return
            }
            highestRequestID = max(highestRequestID ?? 0, id)
            request = RequestStream(maxHeadersSize: maxHeadersSize)
            requests[id] = request
        }
        request.reader.append(data)
        if fin { request.finReceived = true }
        try process(request, id: id)
    }

    /// Reads the frames that have arrived on a request stream and hands their parts to its channel.
    private func process(_ request: RequestStream, id: UInt64) throws(HTTP3Error) {
        while requests[id] === request {
            if case .blocked = request.phase { return }
            guard let frame = try request.reader.next() else { break }
            switch (frame, request.phase) {
            case (.headers(let section), .head):
                try decodeHead(section, of: request, id: id)
            case (.data(let bytes), .body):
                request.bodyBytes += UInt64(bytes.readableBytes)
                if let length = request.contentLength, request.bodyBytes > length {
                    try rejectMessage(request, id: id, "more body than content-length")
                    return
                }
                request.channel?.received(.body(bytes))
            case (.headers(let section), .body):
                let trailers = try decodeTrailers(section, id: id)
                if let length = request.contentLength, request.bodyBytes != length {
                    return try rejectMessage(request, id: id, "less body than content-length")
                }
                request.channel?.received(.end(trailers))
                request.phase = .ended
            case (.data, .head), (.data, .ended), (.headers, .ended), (.settings, _), (.goaway, _), (.maxPushID, _),
                (.cancelPush, _), (.pushPromise, _):
                throw HTTP3Error(code: .frameUnexpected, reason: "frame not allowed on a request stream")
            case (_, .blocked):
                return
            }
        }
        guard requests[id] === request else { return }
        if request.finReceived {
            guard request.reader.isAtFrameBoundary else {
                throw HTTP3Error(code: .frameError, reason: "a request stream ended inside a frame")
            }
            try requestFinished(request, id: id)
        }
        request.channel?.deliverReads()
    }

    private func requestFinished(_ request: RequestStream, id: UInt64) throws(HTTP3Error) {
        switch request.phase {
        case .head:
            // The stream ended before a complete request (§4.1.2).
            connection?.resetStream(id, errorCode: HTTP3ErrorCode.requestIncomplete.rawValue)
            forget(id, cancelling: false)
        case .body:
            if let length = request.contentLength, request.bodyBytes != length {
                return try rejectMessage(request, id: id, "less body than content-length")
            }
            request.channel?.received(.end(nil))
            request.phase = .ended
        case .ended, .blocked:
            break
        }
    }

    private func decodeHead(_ section: ByteBuffer, of request: RequestStream, id: UInt64) throws(HTTP3Error) {
        let fields: [QPACKField]
        do throws(QPACKError) {
            switch try decoder.decodeFieldSection(section, streamID: id) {
            case .fields(let decoded): fields = decoded
            case .blocked:
                request.phase = .blocked(section)
                connection?.setReceiving(false, onStream: id)
                return
            }
        } catch {
            guard error.isConnectionError else {
                return respondDirectly(431, to: id, request)
            }
            throw HTTP3Error(code: HTTP3ErrorCode(rawValue: error.code), reason: error.reason)
        }
        let head: HTTPRequestHead
        let connectProtocol: String?
        do throws(HTTP3Error) {
            (head, request.contentLength, connectProtocol) = try HTTP3Message.requestHead(
                fields, extendedConnect: configuration.settings.enableConnectProtocol)
        } catch {
            return try rejectMessage(request, id: id, error.reason)
        }
        request.phase = .body
        try open(request, id: id, head: head, connectProtocol: connectProtocol)
    }

    private func decodeTrailers(_ section: ByteBuffer, id: UInt64) throws(HTTP3Error) -> HTTPHeaders {
        let outcome: QPACKDecoder.Outcome
        do throws(QPACKError) {
            outcome = try decoder.decodeFieldSection(section, streamID: id)
        } catch {
            throw HTTP3Error(code: HTTP3ErrorCode(rawValue: error.code), reason: error.reason)
        }
        // Trailers that wait for insertions are rare enough to refuse rather than hold the stream for.
        guard case .fields(let fields) = outcome else {
            throw HTTP3Error(code: HTTP3ErrorCode(rawValue: QPACKError.decompressionFailed), reason: "blocked trailers")
        }
        return try HTTP3Message.trailers(fields)
    }

    /// Creates the request's channel, sets up its pipeline and delivers the head.
    private func open(
        _ request: RequestStream, id: UInt64, head: HTTPRequestHead, connectProtocol: String?
    ) throws(HTTP3Error) {
        guard let connection else { return }
        let channel = HTTP3StreamChannel(
            streamID: id, session: self, parent: parent, remote: connection.remoteAddress,
            tls: connection.sessionInfo, connectProtocol: connectProtocol)
        request.channel = channel
        channel.received(.head(head))
        let activated = channel.activate(configuration.initializeStream)
        activated.assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success: channel.deliverReads()
            case .failure:
                requests[id]?.channel = nil
                connection.resetStream(id, errorCode: HTTP3ErrorCode.internalError.rawValue)
                forget(id, cancelling: true)
            }
        }
    }

    /// A malformed request is a stream error (§4.1.2): the stream is reset and the client told to stop.
    private func rejectMessage(_ request: RequestStream, id: UInt64, _ reason: String) throws(HTTP3Error) {
        request.channel?.closed(by: HTTP3Error(code: .messageError, reason: reason))
        connection?.resetStream(id, errorCode: HTTP3ErrorCode.messageError.rawValue)
        forget(id, cancelling: true)
    }

    /// Answers with a bare status and ends the stream, for a request refused before it has a channel.
    private func respondDirectly(_ status: Int, to id: UInt64, _ request: RequestStream) {
        var fields = parent.allocator.buffer(capacity: 32)
        encoder.encode([QPACKField(name: ":status", value: String(status))], streamID: id, into: &fields)
        var frame = parent.allocator.buffer(capacity: fields.readableBytes + 8)
        frame.writeHTTP3FrameHeader(type: HTTP3FrameType.headers, length: fields.readableBytes)
        frame.writeImmutableBuffer(fields)
        sendEncoderInstructions()
        connection?.write(frame, toStream: id, fin: true)
        request.responseEnded = true
        forget(id, cancelling: true)
    }

    /// Drops a request stream's state. `cancelling` also tells the client to stop sending its body.
    private func forget(_ id: UInt64, cancelling: Bool) {
        requests[id] = nil
        if cancelling { connection?.stopReading(id, errorCode: HTTP3ErrorCode.requestCancelled.rawValue) }
        closeIfDrained()
    }

    /// The decoder stream brought insertions a blocked request was waiting for.
    private func unblock(_ id: UInt64) throws(HTTP3Error) {
        guard let request = requests[id], case .blocked(let section) = request.phase else { return }
        request.phase = .head
        try decodeHead(section, of: request, id: id)
        try process(request, id: id)
        connection?.setReceiving(true, onStream: id)
    }

    // MARK: From the request channels

    func setReceiving(_ receiving: Bool, streamID id: UInt64) {
        guard let request = requests[id] else { return }
        if case .blocked = request.phase { return }
        connection?.setReceiving(receiving, onStream: id)
    }

    /// Frames one response part onto its stream.
    func write(_ part: HTTPServerResponsePart, streamID id: UInt64) -> StreamWriteResult {
        guard let connection, let request = requests[id], !request.responseEnded else { return .closed }
        switch part {
        case .head(let head):
            return writeFields(HTTP3Message.responseFields(head), streamID: id, fin: false)
        case .body(.byteBuffer(let bytes)):
            guard bytes.readableBytes > 0 else { return .accepted }
            var header = parent.allocator.buffer(capacity: 9)
            header.writeHTTP3FrameHeader(type: HTTP3FrameType.data, length: bytes.readableBytes)
            connection.write(header, toStream: id)
            return connection.write(bytes, toStream: id)
        case .body(.fileRegion):
            // Request channels are set up without zero-copy file bodies.
            return .closed
        case .end(let trailers):
            request.responseEnded = true
            guard let trailers, !trailers.isEmpty else {
                return connection.write(ByteBuffer(), toStream: id, fin: true)
            }
            return writeFields(HTTP3Message.trailerFields(trailers), streamID: id, fin: true)
        }
    }

    private func writeFields(_ fields: [QPACKField], streamID id: UInt64, fin: Bool) -> StreamWriteResult {
        var section = parent.allocator.buffer(capacity: 256)
        encoder.encode(fields, streamID: id, into: &section)
        var frame = parent.allocator.buffer(capacity: section.readableBytes + 9)
        frame.writeHTTP3FrameHeader(type: HTTP3FrameType.headers, length: section.readableBytes)
        frame.writeImmutableBuffer(section)
        // Insertions go out before the section that may refer to them.
        sendEncoderInstructions()
        return connection?.write(frame, toStream: id, fin: fin) ?? .closed
    }

    func flush() {
        connection?.sendSoon()
    }

    /// The channel closed. Before the response ended that cancels the stream; after it, a request body still
    /// arriving is not needed (§4.1: the server may stop reading with H3_NO_ERROR).
    /// Returns whether the response was complete.
    func channelClosed(streamID id: UInt64) -> Bool {
        guard let request = requests[id] else { return true }
        requests[id] = nil
        if !request.responseEnded {
            connection?.resetStream(id, errorCode: HTTP3ErrorCode.requestCancelled.rawValue)
        }
        if !request.requestEnded {
            let code = request.responseEnded ? HTTP3ErrorCode.noError : .requestCancelled
            connection?.stopReading(id, errorCode: code.rawValue)
        }
        flush()
        closeIfDrained()
        return request.responseEnded
    }

    // MARK: Peer's unidirectional streams

    private func receivedPeerStream(_ data: ByteBuffer, onStream id: UInt64, fin: Bool) throws(HTTP3Error) {
        var data = data
        var kind = peerStreams[id] ?? .untyped(ByteBuffer())
        if case .untyped(var start) = kind {
            start.writeImmutableBuffer(data)
            guard let type = start.readQUICVarInt() else {
                peerStreams[id] = .untyped(start)
                return
            }
            kind = try streamKind(type, id: id)
            data = start
        }
        switch kind {
        case .control(var reader):
            if fin { throw HTTP3Error(code: .closedCriticalStream, reason: "the control stream ended") }
            reader.append(data)
            while let frame = try reader.next() { try controlFrame(frame) }
            kind = .control(reader)
        case .encoder:
            if fin { throw HTTP3Error(code: .closedCriticalStream, reason: "the encoder stream ended") }
            let ready: [UInt64]
            do throws(QPACKError) {
                ready = try decoder.processEncoderStream(data)
            } catch {
                throw HTTP3Error(code: HTTP3ErrorCode(rawValue: error.code), reason: error.reason)
            }
            for streamID in ready { try unblock(streamID) }
        case .decoder:
            if fin { throw HTTP3Error(code: .closedCriticalStream, reason: "the decoder stream ended") }
            do throws(QPACKError) {
                try encoder.processDecoderStream(data)
            } catch {
                throw HTTP3Error(code: HTTP3ErrorCode(rawValue: error.code), reason: error.reason)
            }
        case .untyped, .ignored:
            break
        }
        peerStreams[id] = fin ? nil : kind
    }

    private func streamKind(_ type: UInt64, id: UInt64) throws(HTTP3Error) -> PeerStream {
        switch type {
        case HTTP3StreamType.control:
            guard !hasPeerControl else { throw duplicate("control") }
            hasPeerControl = true
            return .control(HTTP3FrameReader(maxHeadersSize: maxHeadersSize))
        case HTTP3StreamType.qpackEncoder:
            guard !hasPeerEncoder else { throw duplicate("encoder") }
            hasPeerEncoder = true
            return .encoder
        case HTTP3StreamType.qpackDecoder:
            guard !hasPeerDecoder else { throw duplicate("decoder") }
            hasPeerDecoder = true
            return .decoder
        case HTTP3StreamType.push:
            throw HTTP3Error(code: .streamCreationError, reason: "a client opened a push stream")
        default:
            // Unknown types, GREASE among them, are read no further (§6.2).
            connection?.stopReading(id, errorCode: HTTP3ErrorCode.streamCreationError.rawValue)
            return .ignored
        }
    }

    private func duplicate(_ name: String) -> HTTP3Error {
        HTTP3Error(code: .streamCreationError, reason: "a second \(name) stream")
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
        case .goaway, .maxPushID, .cancelPush:
            // No pushes are made, and a client's GOAWAY only limits pushes.
            break
        case .data, .headers, .pushPromise:
            throw HTTP3Error(code: .frameUnexpected, reason: "frame not allowed on the control stream")
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

    /// A connection error (§8): every request ends and the connection closes with the code.
    private func fail(_ error: HTTP3Error) {
        connection?.close(errorCode: error.code.rawValue, reason: error.reason)
    }
}

/// The client reset a request stream (RESET_STREAM) with this HTTP/3 error code.
public struct HTTP3StreamReset: Error, Sendable {
    public var errorCode: UInt64
}
