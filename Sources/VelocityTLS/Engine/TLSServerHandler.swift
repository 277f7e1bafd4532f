import NIOCore
import NIOTLS

/// Terminates TLS on a TCP channel with the BoringSSL engine. Plaintext flows above it as `ByteBuffer`s; when
/// the handshake completes it emits `TLSUserEvent.handshakeCompleted` with the ALPN protocol, so NIO's HTTP/1
/// and HTTP/2 pipelines sit on top unchanged.
public final class TLSServerHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State {
        case handshaking
        case open
        case closed
    }

    private let serverContext: TLSServerContext
    private let certificates: CertificateTable
    private var connection: TLSConnection?
    private var state = State.handshaking
    /// Plaintext written since the last flush (or before the handshake finished), encrypted in one go so
    /// that a response's head and body share a record. Reused across flushes.
    private var plaintext = ByteBuffer()
    private var plaintextPromises: [EventLoopPromise<Void>] = []
    /// Promises of plaintext already encrypted, completed when the records carrying it are written.
    private var encryptedPromises: [EventLoopPromise<Void>] = []

    /// A plaintext buffer that grew past this (a large response) is let go after use, not kept per connection.
    private static let retainedPlaintextCapacity = 64 * 1024

    /// What the handshake negotiated; nil until it completes.
    public private(set) var sessionInfo: TLSSessionInfo?

    /// `certificates` is the table of the snapshot current when the connection was accepted.
    public init(context: TLSServerContext, certificates: CertificateTable) {
        serverContext = context
        self.certificates = certificates
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        let localName = context.channel.localAddress?.ipAddress.map {
            $0.hasPrefix("::ffff:") ? String($0.dropFirst(7)) : $0
        }
        connection = TLSConnection(context: serverContext, certificates: certificates, localName: localName)
        if connection == nil { context.close(promise: nil) }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let connection, state != .closed else { return }
        connection.feed(unwrapInboundIn(data))
        if state == .handshaking {
            switch connection.handshake() {
            case .needInput:
                flushOutput(context: context)
                return
            case .failed(let reason):
                fail(context: context, TLSHandshakeError(reason: reason))
                return
            case .complete:
                state = .open
                let info = connection.sessionInfo
                sessionInfo = info
                flushOutput(context: context)
                context.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: info.alpn))
                if plaintext.readableBytes > 0 {  // written while the handshake ran
                    encryptPlaintext()
                    flushOutput(context: context)
                }
            }
        }
        readPlaintext(context: context, connection)
    }

    private func readPlaintext(context: ChannelHandlerContext, _ connection: TLSConnection) {
        // Checking for input first spares the allocation of a buffer that a read would leave empty.
        reading: while state == .open, connection.hasInput {
            var buffer = context.channel.allocator.buffer(capacity: 16384)
            switch connection.read(into: &buffer) {
            case .data:
                context.fireChannelRead(wrapInboundOut(buffer))
            case .needInput:
                break reading
            case .closed:
                close(context: context, mode: .all, promise: nil)
                return
            case .failed(let reason):
                fail(context: context, TLSHandshakeError(reason: reason))
                return
            }
        }
        if state == .open { flushOutput(context: context) }  // post-handshake messages such as session tickets
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard state != .closed else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        var bytes = unwrapOutboundIn(data)
        plaintext.writeBuffer(&bytes)
        if let promise { plaintextPromises.append(promise) }
    }

    public func flush(context: ChannelHandlerContext) {
        guard state == .open else { return }
        encryptPlaintext()
        flushOutput(context: context)
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if state == .open, mode == .all, let connection {
            encryptPlaintext()
            connection.shutdown()
            flushOutput(context: context)
        }
        state = .closed
        context.close(mode: mode, promise: promise)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        for promise in plaintextPromises + encryptedPromises { promise.fail(ChannelError.ioOnClosedChannel) }
        plaintextPromises = []
        encryptedPromises = []
        context.fireChannelInactive()
    }

    /// Encrypts the buffered plaintext (BoringSSL cuts it into records of at most 16 KiB).
    private func encryptPlaintext() {
        guard let connection, plaintext.readableBytes > 0 || !plaintextPromises.isEmpty else { return }
        if connection.write(plaintext) {
            encryptedPromises += plaintextPromises
        } else {
            for promise in plaintextPromises { promise.fail(ChannelError.ioOnClosedChannel) }
        }
        plaintextPromises = []
        plaintext.clear()
        if plaintext.capacity > Self.retainedPlaintextCapacity { plaintext = ByteBuffer() }
    }

    /// Writes every pending record in one buffer and completes the promises of the plaintext it carries.
    private func flushOutput(context: ChannelHandlerContext) {
        guard let connection else { return }
        let promises = encryptedPromises
        encryptedPromises = []
        let pending = connection.pendingOutput
        guard pending > 0 else {
            for promise in promises { promise.succeed() }
            return
        }
        var records = context.channel.allocator.buffer(capacity: pending)
        connection.drainOutput(into: &records)
        let written: EventLoopPromise<Void>? = promises.isEmpty ? nil : context.eventLoop.makePromise()
        written?.futureResult.whenComplete { result in
            for promise in promises { promise.completeWith(result) }
        }
        context.writeAndFlush(wrapOutboundOut(records), promise: written)
    }

    /// Sends whatever alert BoringSSL queued, then closes.
    private func fail(context: ChannelHandlerContext, _ error: TLSHandshakeError) {
        flushOutput(context: context)
        state = .closed
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }
}

/// A handshake or record-layer failure; the message is BoringSSL's reason, never key material.
public struct TLSHandshakeError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { "TLS failed: \(reason)" }
}
