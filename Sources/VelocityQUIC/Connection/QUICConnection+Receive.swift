import NIOCore
import VelocityTLS

extension QUICConnection {
    /// Processes every packet of a datagram from the peer (coalesced packets, RFC 9000 §12.2). Packets that do
    /// not decrypt are dropped one by one; a protocol error closes this connection only.
    func receive(
        _ datagram: ByteBuffer, from address: SocketAddress, ecn: NIOExplicitCongestionNotificationState,
        now: NIODeadline
    ) {
        switch state {
        case .handshaking, .established: break
        case .closing:
            // Late packets get the CONNECTION_CLOSE again (RFC 9000 §10.2.1).
            closeFrameOwed = true
            return
        case .draining, .closed: return
        }
        if role == .client, receivedRetryOrVersionNegotiation(datagram, now: now) { return }
        var datagram = datagram
        // Only a datagram with a packet that authenticates raises the amplification budget: anyone can send
        // garbage from the client's address.
        let size = datagram.readableBytes
        var authenticated = false
        defer { if authenticated { bytesReceived += size } }
        var start = 0
        while start < datagram.writerIndex {
            guard
                let header = try? PacketHeader.parse(datagram, at: start, shortHeaderIDLength: localID.count),
                header.destination == initialDestination || localIDs.contains(where: { $0.id == header.destination })
            else { break }
            defer { start = header.end }
            guard let packet = processPacket(&datagram, header: header, start: start, from: address, now: now) else {
                continue
            }
            hasAuthenticatedPacket = true
            authenticated = true
            lastReceivedAt = now
            switch ecn {
            case .transportCapableFlag0: spaces[packet.space].receivedECN.ect0 += 1
            case .transportCapableFlag1: spaces[packet.space].receivedECN.ect1 += 1
            case .congestionExperienced: spaces[packet.space].receivedECN.ce += 1
            case .transportNotCapable: break
            }
            if address != remoteAddress, packet.space == 2, !packet.isProbing, state == .established,
                packet.number == spaces[2].received.largest
            {
                migrate(to: address, now: now)
            }
            if case .closing = state { return }
            if case .draining = state { return }
        }
    }

    /// What a packet that authenticated was.
    private struct ReceivedPacket {
        var space: Int
        var number: UInt64
        /// Only frames that probe a path (RFC 9000 §9.1): such a packet does not move the connection.
        var isProbing: Bool
    }

    /// Nil when the packet did not authenticate.
    private func processPacket(
        _ datagram: inout ByteBuffer, header: PacketHeader, start: Int, from address: SocketAddress,
        now: NIODeadline
    ) -> ReceivedPacket? {
        let index: Int
        switch header.type {
        case .initial: index = 0
        case .handshake: index = 1
        case .oneRTT: index = 2
        case .zeroRTT, .retry: return nil  // 0-RTT is not accepted: the client sends it again as 1-RTT
        }
        guard !spaces[index].isDiscarded, let headerKey = spaces[index].readKey,
            let unprotected = PacketProtection.removeHeaderProtection(
                &datagram, header: header, start: start, key: headerKey)
        else { return nil }
        let number = PacketNumber.decode(
            truncated: unprotected.truncatedNumber, length: unprotected.numberLength,
            largest: spaces[index].received.largest)
        guard !spaces[index].received.isDuplicate(number) else { return nil }
        let phase = unprotected.firstByte & 0x04 != 0
        guard let key = readKey(index: index, phase: phase, number: number),
            var payload = PacketProtection.open(
                &datagram, start: start, payloadStart: header.packetNumberOffset + unprotected.numberLength,
                end: header.end, number: number, key: key)
        else { return nil }
        // Reserved bits must be zero once protection is off (RFC 9000 §17.2, §17.3.1).
        let reserved: UInt8 = header.type == .oneRTT ? 0x18 : 0x0C
        let received = ReceivedPacket(space: index, number: number, isProbing: true)
        guard unprotected.firstByte & reserved == 0 else {
            close(.protocolViolation("reserved header bits set"), now: now)
            return received
        }
        if index == 2 { keyPhaseReceived(phase, number: number) }
        if role == .client, index < 2 { adoptServerID(header.source) }
        if role == .server, index == 1, !spaces[0].isDiscarded {
            // A Handshake packet proves the client's address and ends the Initial space (RFC 9001 §4.9.1).
            addressValidated = true
            congestion.onRemoved(bytes: spaces[0].discard())
        }
        let level: EncryptionLevel = index == 0 ? .initial : index == 1 ? .handshake : .oneRTT
        let cryptoBefore = spaces[index].cryptoReceive.readOffset
        var isAckEliciting = false
        var isProbing = true
        var logged: [Frame]? = qlog == nil ? nil : []
        do throws(TransportError) {
            while payload.readableBytes > 0 {
                let frame = try Frame.parse(from: &payload)
                guard frame.isAllowed(in: level) else {
                    throw TransportError.protocolViolation("frame not allowed in this packet type")
                }
                isAckEliciting = isAckEliciting || frame.isAckEliciting
                isProbing = isProbing && frame.isProbing
                logged?.append(frame)
                try handle(
                    frame, space: index, packetDestination: header.destination, from: address,
                    datagramSize: datagram.readableBytes, now: now)
                if case .closing = state { return received }
                if case .draining = state { return received }
            }
        } catch {
            close(error, now: now)
            return received
        }
        if let logged {
            qlog?.packetReceived(
                type: Self.packetTypeName(space: index), number: number, size: header.end - start, frames: logged,
                now: now)
        }
        spaces[index].received.insert(
            number, isAckEliciting: isAckEliciting, now: now,
            ackDelay: index == 2 ? settings.maxAckDelay : .zero)
        // A client probing during the handshake with nothing new has missed our flight: send it again now
        // rather than after our own, possibly backed-off, probe timeout (RFC 9002 §6.2.3). Only the server
        // does this, so two endpoints never answer each other's repeats forever.
        if role == .server, index < 2, isAckEliciting, state == .handshaking,
            spaces[index].cryptoReceive.readOffset == cryptoBefore
        {
            resendHandshakeFlight()
        }
        return ReceivedPacket(space: index, number: number, isProbing: isProbing)
    }

    private func handle(
        _ frame: Frame, space index: Int, packetDestination: ConnectionID, from address: SocketAddress,
        datagramSize: Int, now: NIODeadline
    ) throws(TransportError) {
        switch frame {
        case .padding, .ping:
            break
        case .ack(let ack):
            try process(ack, space: index, now: now)
        case .crypto(let offset, let data):
            try receiveCrypto(offset: offset, data: data, space: index, now: now)
        case .stream(let frame):
            try receive(frame)
        case .resetStream(let id, let errorCode, let finalSize):
            try receiveReset(id: id, errorCode: errorCode, finalSize: finalSize)
        case .stopSending(let id, let errorCode):
            try checkSendingSide(id)
            // It may come before any data, and then opens the peer's stream like data would (RFC 9000 §3.2).
            if var stream = try openedStream(id), !stream.sendClosed {
                stream.sendClosed = true
                stream.pendingReset = (errorCode, stream.send.sendOffset)
                streams[id] = stream
                scheduleSending(id)
            }
        case .maxData(let maximum):
            sendLimit = max(sendLimit, maximum)
        case .maxStreamData(let id, let maximum):
            try checkSendingSide(id)
            if var stream = try openedStream(id), maximum > stream.sendLimit {
                stream.sendLimit = maximum
                streams[id] = stream
                if stream.send.hasPending { scheduleSending(id) }
            }
        case .retireConnectionID(let sequence):
            try retireConnectionID(sequence: sequence, packetDestination: packetDestination)
        case .pathResponse(let data):
            pathResponseReceived(data)
        case .newConnectionID(let frame):
            // We keep sending to the peer's first ID; the token still tells a reset from the peer.
            if peerResetTokens.count < Self.maxPeerResetTokens, peerResetTokens.insert(frame.resetToken).inserted {
                learnPeerResetToken?(frame.resetToken)
            }
        case .maxStreams(let bidirectional, let maximum):
            if bidirectional {
                peerMaxBidirectional = max(peerMaxBidirectional, maximum)
            } else {
                peerMaxUnidirectional = max(peerMaxUnidirectional, maximum)
            }
        case .dataBlocked, .streamDataBlocked, .streamsBlocked:
            break
        case .newToken(let token):
            guard role == .client else { throw .protocolViolation("frame only a server may send") }
            client?.newToken = token
        case .handshakeDone:
            guard role == .client else { throw .protocolViolation("frame only a server may send") }
            handshakeConfirmed()
        case .datagram(let data):
            // The frame's size without its optional length field: the most lenient reading of the limit.
            guard settings.maxDatagramFrameSize > 0, UInt64(1 + data.readableBytes) <= settings.maxDatagramFrameSize
            else {
                throw .protocolViolation("DATAGRAM frames are off or this one is too large")
            }
            application?.received(datagram: data, connection: self)
        case .pathChallenge(let data):
            if address == remoteAddress {
                pathResponses.append(data)
            } else {
                // Padded like the challenge was, which the client had to pad to 1200 bytes (RFC 9000 §8.2.1).
                probeResponses.append((data, address, datagramSize >= 1200))
            }
        case .connectionClose(let frame):
            closeReason = closeReason ?? .peer(QUICCloseReason.Error(frame))
            enterDraining(now: now)
        }
    }

    private func receiveCrypto(
        offset: UInt64, data: ByteBuffer, space index: Int, now: NIODeadline
    ) throws(TransportError) {
        let level: QUICEncryptionLevel = index == 0 ? .initial : index == 1 ? .handshake : .application
        spaces[index].cryptoReceive.insert(offset: offset, data: data)
        if spaces[index].cryptoReceive.bufferedBytes > 64 << 10 {
            throw .cryptoBufferExceeded("CRYPTO data too far ahead")
        }
        var provided = false
        while let chunk = spaces[index].cryptoReceive.read() {
            let accepted = chunk.withUnsafeReadableBytes { handshake.provide($0, at: level) }
            guard accepted else { throw .protocolViolation("TLS refused the handshake data") }
            provided = true
        }
        if provided { try advanceHandshake(now: now) }
    }

    func advanceHandshake(now: NIODeadline) throws(TransportError) {
        let wasComplete = handshake.isComplete
        let progress = handshake.advance()
        if peerParameters == nil, !handshake.peerTransportParameters.isEmpty {
            try applyPeerParameters()
        }
        for (level, isWrite, key) in handshake.takeNewKeys() {
            let index = level == .initial ? 0 : level == .handshake ? 1 : level == .application ? 2 : nil
            guard let index else { continue }
            if isWrite { spaces[index].writeKey = key } else { spaces[index].readKey = key }
        }
        for (index, level) in [(0, QUICEncryptionLevel.initial), (1, .handshake), (2, .application)] {
            let bytes = handshake.takeOutgoing(at: level)
            if !bytes.isEmpty, !spaces[index].isDiscarded {
                var buffer = allocator.buffer(capacity: bytes.count)
                buffer.writeBytes(bytes)
                spaces[index].cryptoSend.append(buffer)
            }
        }
        switch progress {
        case .needInput:
            break
        case .failed(let message):
            let alert = handshake.alert ?? 80  // internal_error
            throw .crypto(alert: alert, handshake.certificateError.map { "certificate: \($0)" } ?? message)
        case .complete:
            guard !wasComplete else { break }
            state = .established
            establishedEventPending = true
            if role == .server {
                // The server confirms the handshake when it completes (RFC 9001 §4.1.2).
                sendsHandshakeDone = true
                issueConnectionIDs()
                // A token lets the client's next connection skip a Retry (RFC 9000 §8.1.3).
                pendingAddressToken = makeAddressToken.map { ByteBuffer(bytes: $0()) }
                congestion.onRemoved(bytes: spaces[1].discard())
            }
            application = makeApplication?(handshake.sessionInfo.alpn)
            application?.started(self)
        }
    }

    private func applyPeerParameters() throws(TransportError) {
        var bytes = allocator.buffer(capacity: 256)
        bytes.writeBytes(handshake.peerTransportParameters)
        let parameters = try TransportParameters.decode(bytes, fromClient: role == .server)
        // The peer must repeat the ID it used, so an attacker cannot have rewritten it (RFC 9000 §7.3).
        guard parameters.initialSourceConnectionID == peerID else {
            throw .transportParameter("initial_source_connection_id does not match")
        }
        if role == .client { try checkServerParameters(parameters) }
        peerParameters = parameters
        sendLimit = parameters.initialMaxData
        peerMaxBidirectional = parameters.initialMaxStreamsBidi
        peerMaxUnidirectional = parameters.initialMaxStreamsUni
        peerMaxAckDelay = .milliseconds(Int64(parameters.maxAckDelay))
    }

    /// STOP_SENDING and MAX_STREAM_DATA concern our sending side: the stream must be one we send on, and one
    /// already open if we are the side that opens it (RFC 9000 §19.5, §19.10).
    private func checkSendingSide(_ id: UInt64) throws(TransportError) {
        if isLocal(id) {
            let next = QUICStream.isBidirectional(id) ? nextLocalBidirectional : nextLocalUnidirectional
            if id >= next { throw .streamState("stream \(id) was not opened yet") }
        } else if !QUICStream.isBidirectional(id) {
            throw .streamState("stream \(id) is one only the peer sends on")
        }
    }

    /// The stream a frame refers to: a peer's stream is opened if new, one of ours must already exist.
    private func openedStream(_ id: UInt64) throws(TransportError) -> QUICStream? {
        isLocal(id) ? streams[id] : try peerStream(id)
    }

    /// The stream that STREAM or RESET_STREAM data of the peer goes to; nil when it is finished and forgotten.
    private func receivingStream(_ id: UInt64) throws(TransportError) -> QUICStream? {
        guard isLocal(id) else { return try peerStream(id) }
        guard QUICStream.isBidirectional(id) else { throw .streamState("stream \(id) is one only we send on") }
        guard id < nextLocalBidirectional else { throw .streamState("stream \(id) was not opened yet") }
        return streams[id]
    }

    /// A stream the peer opened, opening it (and every lower ID of its kind) if it is new; nil when it is
    /// already finished and forgotten.
    private func peerStream(_ id: UInt64) throws(TransportError) -> QUICStream? {
        if let stream = streams[id] { return stream }
        let bidirectional = QUICStream.isBidirectional(id)
        let next = bidirectional ? nextPeerBidirectional : nextPeerUnidirectional
        guard id >= next else { return nil }
        let limit = bidirectional ? maxPeerBidirectional : maxPeerUnidirectional
        guard id >> 2 < limit else {
            throw .streamLimit("too many streams")
        }
        let peerLimit =
            bidirectional ? peerParameters?.initialMaxStreamDataBidiLocal ?? 0 : 0
        var opening = next
        while opening <= id {
            streams[opening] = QUICStream(
                id: opening, isLocal: false, receiveWindow: settings.streamWindow, sendLimit: peerLimit)
            opening += 4
        }
        if bidirectional { nextPeerBidirectional = id + 4 } else { nextPeerUnidirectional = id + 4 }
        return streams[id]
    }

    private func receive(_ frame: StreamFrame) throws(TransportError) {
        guard var stream = try receivingStream(frame.id) else { return }
        let end = frame.offset + UInt64(frame.data.readableBytes)
        if let finalSize = stream.finalSize, end > finalSize || (frame.fin && end != finalSize) {
            throw .finalSize("data past the final size")
        }
        guard end <= stream.receiveLimit else {
            throw .flowControl("stream window exceeded")
        }
        let growth = end > stream.receive.highestOffset ? end - stream.receive.highestOffset : 0
        receivedTotal += growth
        guard receivedTotal <= receiveLimit else {
            throw .flowControl("connection window exceeded")
        }
        if frame.fin {
            guard end >= stream.receive.highestOffset else {
                throw .finalSize("FIN below data already received")
            }
            stream.finalSize = end
        }
        stream.receive.insert(offset: frame.offset, data: frame.data)
        if stream.readAbandoned {
            consume(bytes: stream.receive.discardAll())
            if stream.finalSize == stream.receive.readOffset { stream.finDelivered = true }
        }
        streams[frame.id] = stream
        deliver(frame.id)
    }

    /// Hands a stream's in-order data to the application, unless it paused the stream.
    func deliver(_ id: UInt64) {
        guard var stream = streams[id], !stream.isPaused, !stream.readAbandoned else {
            return retireIfFinished(id)
        }
        var chunks: [ByteBuffer] = []
        while let chunk = stream.receive.read() { chunks.append(chunk) }
        let reachedEnd = !stream.finDelivered && stream.finalSize == stream.receive.readOffset
        if reachedEnd { stream.finDelivered = true }
        let delivered = chunks.reduce(0) { $0 + $1.readableBytes }
        stream.consumed()
        streams[id] = stream
        consume(bytes: delivered)
        if stream.sendsLimitUpdate { scheduleSending(id) }
        // The application may write from its callback, so the stream is stored before it is called.
        for (position, chunk) in chunks.enumerated() {
            application?.received(
                chunk, onStream: id, fin: reachedEnd && position == chunks.count - 1, connection: self)
        }
        if reachedEnd, chunks.isEmpty {
            application?.received(ByteBuffer(), onStream: id, fin: true, connection: self)
        }
        retireIfFinished(id)
    }

    private func receiveReset(id: UInt64, errorCode: UInt64, finalSize: UInt64) throws(TransportError) {
        guard var stream = try receivingStream(id) else { return }
        if let known = stream.finalSize, known != finalSize {
            throw .finalSize("reset changes the final size")
        }
        guard finalSize >= stream.receive.highestOffset else {
            throw .finalSize("reset below data already received")
        }
        guard !stream.finDelivered else { return }
        receivedTotal += finalSize - min(finalSize, stream.receive.highestOffset)
        guard receivedTotal <= receiveLimit else {
            throw .flowControl("connection window exceeded")
        }
        consume(bytes: Int(finalSize - stream.receive.readOffset))
        stream.finalSize = finalSize
        stream.finDelivered = true
        streams[id] = stream
        application?.streamReset(id, errorCode: errorCode, connection: self)
        retireIfFinished(id)
    }

    /// Connection-level flow control: the window slides as data is delivered.
    func consume(bytes: Int) {
        consumedTotal += UInt64(bytes)
        if receiveLimit - consumedTotal < settings.connectionWindow / 2 {
            receiveLimit = consumedTotal + settings.connectionWindow
            sendsMaxData = true
        }
    }

    /// Forgets a stream that is done both ways and, for a peer's stream, lets the peer open another in its
    /// place.
    func retireIfFinished(_ id: UInt64) {
        guard let stream = streams[id], stream.isFinished, stream.inFlightFrames == 0 else { return }
        streams[id] = nil
        guard !stream.isLocal else { return }
        if QUICStream.isBidirectional(id) {
            maxPeerBidirectional += 1
            sendsMaxStreams.bidirectional = true
        } else {
            maxPeerUnidirectional += 1
            sendsMaxStreams.unidirectional = true
        }
    }
}
