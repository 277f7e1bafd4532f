import NIOCore
import NIOHTTP1
import VelocityTLS

/// One HTTP/3 request stream as a NIO channel that reads `HTTPServerRequestPart`s and writes
/// `HTTPServerResponsePart`s, so the request handlers of HTTP/1.1 and HTTP/2 serve it unchanged (as NIO's
/// HTTP/2 stream channels do). Framing and QPACK belong to the connection; this channel only carries parts,
/// back-pressure both ways (`autoRead` holds the QUIC stream's credit back; writes past the stream's buffer
/// limit complete when it drains) and the stream's end.
///
/// Confined to its event loop, which is the QUIC socket's.
public final class HTTP3StreamChannel: Channel, ChannelCore, @unchecked Sendable {
    public let streamID: UInt64
    public let eventLoop: any EventLoop
    public let parent: (any Channel)?
    public let allocator: ByteBufferAllocator
    public let localAddress: SocketAddress?
    public let remoteAddress: SocketAddress?
    /// What the connection's handshake negotiated, for the access log.
    public let tls: TLSSessionInfo
    /// The `:protocol` of an extended CONNECT (RFC 9220), known before the pipeline is set up.
    public let connectProtocol: String?

    private unowned let session: HTTP3ServerConnection
    private var _pipeline: ChannelPipeline!
    private let closePromise: EventLoopPromise<Void>
    private var open = true
    private var autoRead = true
    private var readRequested = false
    private var delivering = false
    private var pendingReads = CircularBuffer<HTTPServerRequestPart>()
    private var writable = true
    /// Promises of writes made while the stream's buffer was full; they complete when it drains.
    private var waitingWrites: [EventLoopPromise<Void>] = []

    init(
        streamID: UInt64, session: HTTP3ServerConnection, parent: any Channel, remote: SocketAddress,
        tls: TLSSessionInfo, connectProtocol: String?
    ) {
        self.streamID = streamID
        self.session = session
        self.parent = parent
        eventLoop = parent.eventLoop
        allocator = parent.allocator
        localAddress = parent.localAddress
        remoteAddress = remote
        self.tls = tls
        self.connectProtocol = connectProtocol
        closePromise = parent.eventLoop.makePromise()
        _pipeline = ChannelPipeline(channel: self)
    }

    public var pipeline: ChannelPipeline { _pipeline }
    public var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    public var isWritable: Bool { writable }
    public var isActive: Bool { open }
    public var _channelCore: any ChannelCore { self }

    public func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        guard eventLoop.inEventLoop else {
            return eventLoop.submit { try self.setOption0(option, value: value) }
        }
        return eventLoop.makeCompletedFuture { try setOption0(option, value: value) }
    }

    public func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        guard eventLoop.inEventLoop else {
            return eventLoop.submit { try self.getOption0(option) }
        }
        return eventLoop.makeCompletedFuture { try getOption0(option) }
    }

    private func setOption0<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
        switch option {
        case _ as ChannelOptions.Types.AutoReadOption:
            let reading = value as! Bool
            guard reading != autoRead else { return }
            autoRead = reading
            if reading { deliverReads() } else { session.setReceiving(false, streamID: streamID) }
        default:
            throw ChannelError.operationUnsupported
        }
    }

    private func getOption0<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
        switch option {
        case _ as ChannelOptions.Types.AutoReadOption: return autoRead as! Option.Value
        case _ as ChannelOptions.Types.AllowRemoteHalfClosureOption: return false as! Option.Value
        default: throw ChannelError.operationUnsupported
        }
    }

    // MARK: From the connection

    /// Runs the initializer, then makes the channel active.
    func activate(_ initializer: (HTTP3StreamChannel) -> EventLoopFuture<Void>) -> EventLoopFuture<Void> {
        initializer(self).map { [self] in
            pipeline.fireChannelRegistered()
            pipeline.fireChannelActive()
        }
    }

    /// Queues a request part; ``deliverReads()`` hands it on.
    func received(_ part: HTTPServerRequestPart) {
        pendingReads.append(part)
    }

    /// Passes queued parts to the pipeline while it reads, then tells the connection whether the QUIC stream
    /// should keep delivering.
    func deliverReads() {
        guard open, !delivering else { return }
        delivering = true
        var fired = false
        while autoRead || readRequested, let part = pendingReads.popFirst() {
            readRequested = false
            pipeline.syncOperations.fireChannelRead(NIOAny(part))
            fired = true
        }
        if fired { pipeline.fireChannelReadComplete() }
        delivering = false
        guard open else { return }
        session.setReceiving(autoRead || readRequested, streamID: streamID)
    }

    /// The stream's buffer drained: waiting writes complete and the pipeline may write again.
    func becameWritable() {
        let waiting = waitingWrites
        waitingWrites = []
        for promise in waiting { promise.succeed() }
        guard !writable, open else { return }
        writable = true
        pipeline.fireChannelWritabilityChanged()
    }

    /// The stream ended from the peer's side or the connection went away: the pipeline hears `error` if any,
    /// then the channel closes.
    func closed(by error: (any Error)?) {
        guard open else { return }
        if let error { pipeline.fireErrorCaught(error) }
        finishClosing(error: error ?? ChannelError.eof)
    }

    /// Without an error, writes still waiting for the stream to drain count as done: the stream keeps their
    /// data and sends it after the channel is gone.
    private func finishClosing(error: (any Error)?) {
        guard open else { return }
        open = false
        pendingReads.removeAll()
        let waiting = waitingWrites
        waitingWrites = []
        for promise in waiting {
            if let error { promise.fail(error) } else { promise.succeed() }
        }
        pipeline.fireChannelInactive()
        eventLoop.execute { [self] in
            removeHandlers(pipeline: pipeline)
            closePromise.succeed()
        }
    }

    // MARK: ChannelCore

    public func localAddress0() throws -> SocketAddress {
        guard let localAddress else { throw ChannelError.operationUnsupported }
        return localAddress
    }

    public func remoteAddress0() throws -> SocketAddress {
        guard let remoteAddress else { throw ChannelError.operationUnsupported }
        return remoteAddress
    }

    public func register0(promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    public func registerAlreadyConfigured0(promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    public func bind0(to: SocketAddress, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    public func connect0(to: SocketAddress, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    public func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard open else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let part = unwrapData(data, as: HTTPServerResponsePart.self)
        switch session.write(part, streamID: streamID) {
        case .accepted:
            promise?.succeed()
            // One request per stream: once the response is complete the channel is done, whether or not its
            // handler closes it.
            if case .end = part { eventLoop.execute { self.close(promise: nil) } }
        case .full:
            if let promise { waitingWrites.append(promise) }
            if writable {
                writable = false
                pipeline.fireChannelWritabilityChanged()
            }
        case .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
            finishClosing(error: ChannelError.ioOnClosedChannel)
        }
    }

    public func flush0() {
        session.flush()
    }

    public func read0() {
        readRequested = true
        deliverReads()
    }

    /// A close before the response ended cancels the stream; after it, the response still goes out in full.
    public func close0(error: any Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard open else {
            promise?.fail(ChannelError.alreadyClosed)
            return
        }
        let complete = session.channelClosed(streamID: streamID)
        finishClosing(error: complete ? nil : error)
        promise?.succeed()
    }

    public func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    public func channelRead0(_ data: NIOAny) {}

    public func errorCaught0(error: any Error) {}
}
