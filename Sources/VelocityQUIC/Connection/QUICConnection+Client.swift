import NIOCore
import VelocityTLS

/// What only a client tracks during its handshake (RFC 9000 §7.2, §7.3, §17.2.5).
struct ClientHandshakeState {
    /// The destination ID of the very first Initial, which the server must repeat in its parameters.
    let originalDestination: ConnectionID
    /// The source ID of the Retry that was followed, which the server must repeat too.
    var retrySource: ConnectionID?
    /// The token every Initial carries: a Retry's, or a NEW_TOKEN from an earlier connection.
    var token: ByteBuffer
    /// The server's first packet fixed its ID; later packets cannot change it.
    var hasServerID = false
    /// The server's NEW_TOKEN, which lets a later connection to it skip a Retry.
    var newToken: ByteBuffer?
}

/// The client's steps of the handshake; everything else a client does is the connection's shared code.
extension QUICConnection {
    /// Clients pick at least 8 bytes for the first destination ID (RFC 9000 §7.2).
    static let clientOriginalIDLength = 8

    /// A client connection to `address`, its ClientHello queued: the endpoint sends what ``flush(now:)``
    /// builds. `token` is a NEW_TOKEN from an earlier connection to the same server. Nil when TLS refuses the
    /// settings.
    static func client(
        to address: SocketAddress, serverName: String, localID: ConnectionID, tls: TLSClientContext,
        settings: ConnectionSettings, token: ByteBuffer?, now: NIODeadline, allocator: ByteBufferAllocator
    ) -> QUICConnection? {
        var parameters = ByteBuffer()
        localParameters(settings: settings, localID: localID).encode(into: &parameters)
        guard
            let handshake = QUICHandshake(
                client: tls, serverName: serverName, transportParameters: Array(parameters.readableBytesView))
        else { return nil }
        let destination = ConnectionID.random(count: clientOriginalIDLength)
        let connection = QUICConnection(
            role: .client, settings: settings, initialDestination: destination, localID: localID,
            peerID: destination, remoteAddress: address, handshake: handshake, now: now, allocator: allocator)
        connection.client = ClientHandshakeState(originalDestination: destination, token: token ?? ByteBuffer())
        do throws(TransportError) {
            try connection.advanceHandshake(now: now)
        } catch {
            return nil
        }
        return connection
    }

    /// The NEW_TOKEN the server gave, for the next connection to it.
    public var addressToken: ByteBuffer? { client?.newToken }

    /// From its first packet on, the client addresses the server by the ID the server chose (RFC 9000 §7.2).
    func adoptServerID(_ id: ConnectionID) {
        guard var state = client, !state.hasServerID else { return }
        state.hasServerID = true
        client = state
        peerID = id
    }

    /// The IDs in the server's parameters must be the ones the packets showed, so that nobody on the path can
    /// have rewritten them, or sent a Retry of their own (RFC 9000 §7.3).
    func checkServerParameters(_ parameters: TransportParameters) throws(TransportError) {
        guard let client else { return }
        guard parameters.originalDestinationConnectionID == client.originalDestination else {
            throw .transportParameter("original_destination_connection_id does not match")
        }
        guard parameters.retrySourceConnectionID == client.retrySource else {
            throw .transportParameter("retry_source_connection_id does not match")
        }
        if let token = parameters.statelessResetToken, peerResetTokens.insert(token).inserted {
            learnPeerResetToken?(token)
        }
    }

    /// HANDSHAKE_DONE confirms the client's handshake, which ends its Handshake space (RFC 9001 §4.1.2).
    func handshakeConfirmed() {
        guard !isHandshakeConfirmed else { return }
        congestion.onRemoved(bytes: spaces[1].discard())
    }

    /// Retry and Version Negotiation packets, which only a client receives; true when `datagram` was one.
    func receivedRetryOrVersionNegotiation(_ datagram: ByteBuffer, now: NIODeadline) -> Bool {
        guard let first = datagram.getInteger(at: datagram.readerIndex, as: UInt8.self), first & 0x80 != 0,
            let version = datagram.getInteger(at: datagram.readerIndex + 1, as: UInt32.self)
        else { return false }
        if version == 0 {
            versionNegotiationReceived(datagram, now: now)
            return true
        }
        guard version == PacketHeader.version1, first & 0x30 == 0x30 else { return false }
        retryReceived(datagram)
        return true
    }

    /// Follows a Retry (RFC 9000 §17.2.5.2): once, before anything else from the server, and only with an
    /// integrity tag that proves it answers our first Initial. The Initial keys then come from the ID the
    /// Retry chose, and our Initial data goes again with its token; packet numbers go on.
    private func retryReceived(_ datagram: ByteBuffer) {
        guard var state = client, !state.hasServerID, state.retrySource == nil,
            let packet = datagram.getBytes(at: datagram.readerIndex, length: datagram.readableBytes),
            packet.count > 7 + 16
        else { return }
        var reader = ByteBuffer(bytes: packet.dropLast(16))
        reader.moveReaderIndex(forwardBy: 5)
        guard let destinationLength = reader.readInteger(as: UInt8.self),
            reader.readConnectionID(length: Int(destinationLength)) == localID,
            let sourceLength = reader.readInteger(as: UInt8.self),
            let source = reader.readConnectionID(length: Int(sourceLength)), reader.readableBytes > 0
        else { return }
        let original = state.originalDestination
        let pseudoPacket = [UInt8(original.count)] + original.bytes + packet.dropLast(16)
        guard QUICRetryIntegrity.tag(pseudoPacket: pseudoPacket)[...] == packet.suffix(16) else { return }
        state.retrySource = source
        state.token = reader
        client = state
        peerID = source
        initialDestination = source
        installInitialKeys()
        resend(space: 0)
    }

    /// A Version Negotiation packet ends the attempt, unless it lists version 1, which we offered: then it is
    /// stale or forged and ignored (RFC 9000 §6.2). Nothing is sent back.
    private func versionNegotiationReceived(_ datagram: ByteBuffer, now: NIODeadline) {
        guard let state = client, !state.hasServerID, self.state == .handshaking else { return }
        var reader = datagram
        reader.moveReaderIndex(forwardBy: 5)
        guard let destinationLength = reader.readInteger(as: UInt8.self),
            reader.readConnectionID(length: Int(destinationLength)) == localID,
            let sourceLength = reader.readInteger(as: UInt8.self),
            reader.readConnectionID(length: Int(sourceLength)) == initialDestination,
            reader.readableBytes >= 4, reader.readableBytes % 4 == 0
        else { return }
        var versions: [UInt32] = []
        while let version = reader.readInteger(as: UInt32.self) { versions.append(version) }
        guard !versions.contains(PacketHeader.version1) else { return }
        closeReason = .versionNegotiation(versions)
        enterDraining(now: now)
    }
}
