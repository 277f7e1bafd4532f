import NIOCore
import VelocityTLS

/// A datagram ready for the socket.
struct OutgoingDatagram {
    var data: ByteBuffer
    var address: SocketAddress
    /// Sent with the ECT(0) codepoint.
    var ecnMarked: Bool
}

/// Building datagrams: packets of every level with something to send are coalesced into one datagram
/// (RFC 9000 §12.2), within the congestion window and the anti-amplification limit.
extension QUICConnection {
    /// The smallest datagram that may carry an Initial packet: a client pads every one to it, a server those with
    /// an ack-eliciting Initial (RFC 9000 §14.1).
    private static let minimumInitialDatagram = 1200
    /// Header, the shortest frame and the tag: less room than this is not worth a packet.
    private static let minimumPacketRoom = 64

    /// A packet written into the datagram but not sealed yet: the last one may still take padding.
    private struct OpenPacket {
        var space: Int
        var start: Int
        /// Where a long header's two-byte length goes; nil for a short header.
        var lengthOffset: Int?
        var numberOffset: Int
        var numberLength: Int
        var number: UInt64
        var key: QUICPacketKey
        var frames: [SentFrame]
        var isAckEliciting: Bool
        var isPadded = false
        /// Holds a PATH_CHALLENGE, so its datagram is padded to full size.
        var carriesChallenge = false
    }

    /// Every datagram there is room and reason to send now.
    func flush(now: NIODeadline) -> [OutgoingDatagram] {
        var datagrams: [OutgoingDatagram] = []
        pacingDeadline = nil
        wakePending = false
        defer { notifyWriters() }
        if let frame = closeWhenSent, streamsSettled {
            closeWhenSent = nil
            close(frame, now: now)
        }
        while let response = probeResponses.popLast() {
            if let datagram = buildProbeResponse(response.data, padded: response.padded, now: now) {
                datagrams.append(OutgoingDatagram(data: datagram, address: response.address, ecnMarked: false))
            }
        }
        while datagrams.count < 64, let datagram = buildDatagram(now: now) {
            datagrams.append(datagram)
        }
        return datagrams
    }

    /// A PATH_RESPONSE alone, for a challenge from an address the connection is not using.
    private func buildProbeResponse(_ data: UInt64, padded: Bool, now: NIODeadline) -> ByteBuffer? {
        guard state == .established, let key = spaces[2].writeKey else { return nil }
        var datagram = allocator.buffer(capacity: padded ? 1200 : 64)
        var packet = startPacket(space: 2, key: key, numberLength: 4, into: &datagram)
        spaces[2].nextPacketNumber += 1
        Frame.pathResponse(data).encode(into: &datagram)
        packet.isAckEliciting = true
        if padded { datagram.writeRepeatingByte(0, count: 1200 - datagram.writerIndex - QUICPacketKey.tagLength) }
        seal(packet, into: &datagram, now: now)
        return datagram
    }

    private var datagramLimit: Int {
        var limit = min(settings.maxDatagramSize, Int(clamping: peerParameters?.maxUDPPayloadSize ?? 65527))
        if !addressValidated { limit = min(limit, 3 * bytesReceived - bytesSent) }
        return limit
    }

    private func buildDatagram(now: NIODeadline) -> OutgoingDatagram? {
        if case .closing = state {
            return buildClose().map { OutgoingDatagram(data: $0, address: remoteAddress, ecnMarked: false) }
        }
        guard state == .handshaking || state == .established else { return nil }
        let limit = datagramLimit
        guard limit >= Self.minimumPacketRoom else { return nil }
        var datagram = allocator.buffer(capacity: limit)
        let marked = ecn.marksPackets
        var open: OpenPacket?
        var carriesInitial = false
        var carriesHandshake = false
        var carriesChallenge = false
        for index in 0..<3 {
            guard let key = spaces[index].writeKey, !spaces[index].isDiscarded else { continue }
            // 1-RTT packets wait for the handshake (no half-RTT data is sent).
            if index == 2, state != .established { continue }
            // The packet before is sealed only once this one is sure to follow: the last one takes the padding.
            guard let mayElicit = sendPermission(space: index, now: now) else { continue }
            if let previous = open {
                guard limit - datagram.writerIndex - QUICPacketKey.tagLength >= Self.minimumPacketRoom else { break }
                seal(previous, into: &datagram, marked: marked, now: now)
                open = nil
            }
            guard
                let packet = writePacket(
                    space: index, key: key, mayElicit: mayElicit, into: &datagram, limit: limit, now: now)
            else { continue }
            if index == 0, packet.isAckEliciting || role == .client { carriesInitial = true }
            if index == 1 { carriesHandshake = true }
            if packet.carriesChallenge { carriesChallenge = true }
            open = packet
        }
        // Its streams' flow control can leave the last space with nothing to write after all: the packets
        // already sealed still go.
        guard var last = open else { return datagram.readableBytes > 0 ? finish(datagram, marked: marked) : nil }
        // Padding goes in the last packet: PADDING frames are zero bytes (RFC 9000 §19.1).
        // So are datagrams probing a path, to prove it carries full-size packets (RFC 9000 §8.2.1).
        let minimum = carriesInitial || carriesChallenge ? Self.minimumInitialDatagram : 0
        let padding = max(0, min(minimum, limit) - datagram.writerIndex - QUICPacketKey.tagLength)
        if padding > 0 {
            datagram.writeRepeatingByte(0, count: padding)
            last.isPadded = true
        }
        seal(last, into: &datagram, marked: marked, now: now)
        // A client's first Handshake packet ends its Initial space (RFC 9001 §4.9.1).
        if role == .client, carriesHandshake, !spaces[0].isDiscarded {
            congestion.onRemoved(bytes: spaces[0].discard())
        }
        return finish(datagram, marked: marked)
    }

    private func finish(_ datagram: ByteBuffer, marked: Bool) -> OutgoingDatagram {
        bytesSent += datagram.readableBytes
        return OutgoingDatagram(data: datagram, address: remoteAddress, ecnMarked: marked)
    }

    /// Whether a space has reason to send a packet now: nil when not; else whether it may carry more than ACKs,
    /// which takes room in the congestion window and the pacer's leave, unless it is a probe.
    private func sendPermission(space index: Int, now: NIODeadline) -> Bool? {
        let ackDue = spaces[index].received.ackDeadline.map { $0 <= now } ?? false
        let probe = spaces[index].probesWanted > 0
        var mayElicit = probe || congestion.available >= settings.maxDatagramSize
        let hasFrames = hasFrames(space: index)
        if mayElicit, !probe, hasFrames,
            let wait = pacer.check(
                size: settings.maxDatagramSize, window: congestion.window, smoothedRTT: rtt.smoothed, now: now)
        {
            pacingDeadline = wait
            mayElicit = false
        }
        guard ackDue || (mayElicit && hasFrames) || probe else { return nil }
        return mayElicit
    }

    /// Writes one packet's header and frames; nil (writing nothing) when nothing fitted or was allowed.
    private func writePacket(
        space index: Int, key: QUICPacketKey, mayElicit: Bool, into datagram: inout ByteBuffer, limit: Int,
        now: NIODeadline
    ) -> OpenPacket? {
        let received = spaces[index].received
        let ackDue = received.ackDeadline.map { $0 <= now } ?? false
        let numberLength = PacketNumber.length(
            for: spaces[index].nextPacketNumber, largestAcked: spaces[index].largestAcknowledged)
        let start = datagram.writerIndex
        var packet = startPacket(space: index, key: key, numberLength: numberLength, into: &datagram)
        let end = limit - QUICPacketKey.tagLength

        if received.hasNewRanges || ackDue, let ack = ackFrame(space: index, now: now),
            ack.encodedSize <= end - datagram.writerIndex
        {
            Frame.ack(ack).encode(into: &datagram)
            packet.frames.append(.ack(largest: ack.largest))
            spaces[index].received.onAckSent()
        }
        if mayElicit {
            writeFrames(space: index, into: &datagram, end: end, packet: &packet)
            if spaces[index].probesWanted > 0 {
                if !packet.isAckEliciting, end - datagram.writerIndex >= 1 {
                    Frame.ping.encode(into: &datagram)
                    packet.isAckEliciting = true
                }
                spaces[index].probesWanted -= 1
            }
        }
        guard !packet.frames.isEmpty || packet.isAckEliciting else {
            datagram.moveWriterIndex(to: start)
            return nil
        }
        // The header-protection sample needs four bytes after the packet number's start (RFC 9001 §5.4.2).
        let payload = datagram.writerIndex - packet.numberOffset
        if payload < 4 { datagram.writeRepeatingByte(0, count: 4 - payload) }
        spaces[index].nextPacketNumber += 1
        return packet
    }

    /// Writes a packet's header and number (not yet counted as used) at the datagram's end.
    private func startPacket(
        space index: Int, key: QUICPacketKey, numberLength: Int, into datagram: inout ByteBuffer
    ) -> OpenPacket {
        let start = datagram.writerIndex
        let number = spaces[index].nextPacketNumber
        var lengthOffset: Int?
        if index == 2 {
            datagram.writeInteger(UInt8(0x40 | (keyPhase ? 0x04 : 0) | UInt8(numberLength - 1)))
            datagram.writeConnectionID(peerID)
        } else {
            datagram.writeInteger(UInt8(0xC0 | (index == 0 ? 0x00 : 0x20) | UInt8(numberLength - 1)))
            datagram.writeInteger(PacketHeader.version1)
            datagram.writeInteger(UInt8(peerID.count))
            datagram.writeConnectionID(peerID)
            datagram.writeInteger(UInt8(localID.count))
            datagram.writeConnectionID(localID)
            if index == 0 {
                // Only a client sends a token, when a Retry or an earlier connection gave it one.
                let token = client?.token ?? ByteBuffer()
                datagram.writeQUICVarInt(UInt64(token.readableBytes))
                datagram.writeImmutableBuffer(token)
            }
            lengthOffset = datagram.writerIndex
            datagram.writeQUICVarInt(0, length: 2)
        }
        let numberOffset = datagram.writerIndex
        for shift in stride(from: (numberLength - 1) * 8, through: 0, by: -8) {
            datagram.writeInteger(UInt8(truncatingIfNeeded: number >> UInt64(shift)))
        }
        return OpenPacket(
            space: index, start: start, lengthOffset: lengthOffset, numberOffset: numberOffset,
            numberLength: numberLength, number: number, key: key, frames: [], isAckEliciting: false)
    }

    private func ackFrame(space index: Int, now: NIODeadline) -> ACKFrame? {
        let received = spaces[index].received
        guard let largest = received.largest else { return nil }
        let delay = received.largestReceivedAt.map { now - $0 } ?? .zero
        // Delays are sent in units of 2^3 microseconds, the default exponent this server announces.
        let units = index == 2 ? UInt64(max(0, delay.nanoseconds / 1000)) >> 3 : 0
        let counts = spaces[index].receivedECN
        let reportsECN = counts.ect0 > 0 || counts.ect1 > 0 || counts.ce > 0
        return ACKFrame(largest: largest, delay: units, ranges: received.ranges, ecn: reportsECN ? counts : nil)
    }

    private func hasFrames(space index: Int) -> Bool {
        if spaces[index].cryptoSend.hasPending { return true }
        guard index == 2 else { return false }
        return sendsHandshakeDone || sendsMaxData || !pathResponses.isEmpty || !pendingNewIDs.isEmpty
            || pathValidation?.challengeOwed == true
            || pendingAddressToken != nil || !pendingDatagrams.isEmpty
            || sendsMaxStreams.bidirectional
            || sendsMaxStreams.unidirectional || !sendingStreams.isEmpty
    }

    /// CRYPTO data, then control frames, then stream data, as much as fits before `end`.
    private func writeFrames(space index: Int, into datagram: inout ByteBuffer, end: Int, packet: inout OpenPacket) {
        while spaces[index].cryptoSend.hasPending {
            let available = end - datagram.writerIndex
            let room =
                available - Frame.cryptoHeaderSize(offset: spaces[index].cryptoSend.sendOffset, length: available)
            guard room > 0, let chunk = spaces[index].cryptoSend.take(maxBytes: room, flowLimit: .max) else { break }
            Frame.crypto(offset: chunk.offset, data: chunk.data).encode(into: &datagram)
            packet.frames.append(.crypto(offset: chunk.offset, data: chunk.data))
            packet.isAckEliciting = true
        }
        guard index == 2 else { return }
        if sendsHandshakeDone, end - datagram.writerIndex >= 1 {
            Frame.handshakeDone.encode(into: &datagram)
            packet.frames.append(.handshakeDone)
            packet.isAckEliciting = true
            sendsHandshakeDone = false
        }
        if let validation = pathValidation, validation.challengeOwed, end - datagram.writerIndex >= 9 {
            Frame.pathChallenge(validation.challenge).encode(into: &datagram)
            pathValidation?.challengeOwed = false
            packet.frames.append(.pathChallenge)
            packet.carriesChallenge = true
            packet.isAckEliciting = true
        }
        while let challenge = pathResponses.first, end - datagram.writerIndex >= 9 {
            Frame.pathResponse(challenge).encode(into: &datagram)
            pathResponses.removeFirst()
            packet.isAckEliciting = true
        }
        if let token = pendingAddressToken, end - datagram.writerIndex >= Frame.newToken(token).encodedSize {
            Frame.newToken(token).encode(into: &datagram)
            pendingAddressToken = nil
            packet.frames.append(.newToken(token))
            packet.isAckEliciting = true
        }
        while let frame = pendingNewIDs.first, end - datagram.writerIndex >= Frame.newConnectionID(frame).encodedSize {
            Frame.newConnectionID(frame).encode(into: &datagram)
            pendingNewIDs.removeFirst()
            packet.frames.append(.newConnectionID(frame))
            packet.isAckEliciting = true
        }
        if sendsMaxData, end - datagram.writerIndex >= 9 {
            Frame.maxData(receiveLimit).encode(into: &datagram)
            packet.frames.append(.maxData)
            packet.isAckEliciting = true
            sendsMaxData = false
        }
        for bidirectional in [true, false]
        where (bidirectional ? sendsMaxStreams.bidirectional : sendsMaxStreams.unidirectional)
            && end - datagram.writerIndex >= 9
        {
            let maximum = bidirectional ? maxPeerBidirectional : maxPeerUnidirectional
            Frame.maxStreams(bidirectional: bidirectional, maximum: maximum).encode(into: &datagram)
            packet.frames.append(.maxStreams(bidirectional: bidirectional))
            packet.isAckEliciting = true
            if bidirectional { sendsMaxStreams.bidirectional = false } else { sendsMaxStreams.unidirectional = false }
        }
        // Datagrams go before stream data, which can wait; one that does not fit waits for the next packet.
        while let data = pendingDatagrams.first,
            end - datagram.writerIndex >= Frame.datagramHeaderSize(length: data.readableBytes) + data.readableBytes
        {
            Frame.datagram(pendingDatagrams.removeFirst()).encode(into: &datagram)
            packet.isAckEliciting = true
        }
        writeStreamFrames(into: &datagram, end: end, packet: &packet)
    }

    /// Streams take turns: each gets one frame per round, so one large response does not starve the rest.
    private func writeStreamFrames(into datagram: inout ByteBuffer, end: Int, packet: inout OpenPacket) {
        var turns = sendingStreams.count
        while turns > 0, end - datagram.writerIndex > 24, let id = sendingStreams.popFirst() {
            turns -= 1
            guard var stream = streams[id] else { continue }
            stream.isScheduled = false
            if stream.sendsLimitUpdate {
                Frame.maxStreamData(id: id, maximum: stream.receiveLimit).encode(into: &datagram)
                packet.frames.append(.maxStreamData(id: id))
                packet.isAckEliciting = true
                stream.sendsLimitUpdate = false
            }
            if let errorCode = stream.pendingStopSending {
                Frame.stopSending(id: id, errorCode: errorCode).encode(into: &datagram)
                packet.frames.append(.stopSending(id: id, errorCode: errorCode))
                packet.isAckEliciting = true
                stream.pendingStopSending = nil
            }
            if let reset = stream.pendingReset {
                Frame.resetStream(id: id, errorCode: reset.errorCode, finalSize: reset.finalSize).encode(
                    into: &datagram)
                packet.frames.append(.resetStream(id: id, errorCode: reset.errorCode, finalSize: reset.finalSize))
                packet.isAckEliciting = true
                stream.pendingReset = nil
            } else if !stream.sendClosed, stream.send.hasPending {
                // New data also needs connection credit; lost data was already counted.
                let connectionRoom = sendLimit > sentTotal ? sendLimit - sentTotal : 0
                let flowLimit = min(stream.sendLimit, stream.send.sendOffset + connectionRoom)
                let available = end - datagram.writerIndex
                let room = available - StreamFrame.headerSize(id: id, offset: stream.send.sendOffset, length: available)
                let before = stream.send.sendOffset
                if room > 0, let chunk = stream.send.take(maxBytes: room, flowLimit: flowLimit) {
                    sentTotal += stream.send.sendOffset - before
                    StreamFrame.encodeHeader(
                        id: id, offset: chunk.offset, length: chunk.data.readableBytes, fin: chunk.fin, into: &datagram)
                    datagram.writeImmutableBuffer(chunk.data)
                    packet.frames.append(.stream(id: id, offset: chunk.offset, data: chunk.data, fin: chunk.fin))
                    packet.isAckEliciting = true
                    stream.inFlightFrames += 1
                }
            }
            if stream.send.hasPending && !stream.sendClosed || stream.pendingReset != nil
                || stream.pendingStopSending != nil
            {
                stream.isScheduled = true
                sendingStreams.append(id)
            }
            streams[id] = stream
        }
    }

    /// Seals a packet: its length, payload protection and header protection; then records it as sent.
    private func seal(_ packet: OpenPacket, into datagram: inout ByteBuffer, marked: Bool = false, now: NIODeadline) {
        if let lengthOffset = packet.lengthOffset {
            let length = datagram.writerIndex - packet.numberOffset + QUICPacketKey.tagLength
            datagram.setQUICVarInt(UInt64(length), at: lengthOffset, length: 2)
        }
        PacketProtection.seal(
            &datagram, start: packet.start, numberOffset: packet.numberOffset, numberLength: packet.numberLength,
            number: packet.number, key: packet.key)
        let size = datagram.writerIndex - packet.start
        qlog?.packetSent(
            type: Self.packetTypeName(space: packet.space), number: packet.number, size: size, frames: packet.frames,
            now: now)
        let inFlight = packet.isAckEliciting || packet.isPadded
        ecn.onSent(marked: marked)
        guard inFlight else { return }
        spaces[packet.space].sent.append(
            SentPacket(
                number: packet.number, sentAt: now, size: size, isAckEliciting: packet.isAckEliciting,
                inFlight: inFlight, ecnMarked: marked, frames: packet.frames))
        congestion.onSent(bytes: size)
        pacer.onSent(bytes: size)
        if packet.isAckEliciting { spaces[packet.space].lastAckElicitingSentAt = now }
    }

    /// While closing, one datagram with CONNECTION_CLOSE at the highest level both sides have keys for.
    private func buildClose() -> ByteBuffer? {
        guard closeFrameOwed, var frame = closeFrame else { return nil }
        closeFrameOwed = false
        guard let index = (0..<3).last(where: { spaces[$0].writeKey != nil && !spaces[$0].isDiscarded }),
            let key = spaces[index].writeKey
        else { return nil }
        // Before the handshake completes, an application close would reveal application state; it becomes a
        // transport APPLICATION_ERROR (RFC 9000 §10.2.3).
        if index < 2, frame.isApplication {
            frame = ConnectionCloseFrame(
                isApplication: false, errorCode: TransportError.applicationError, frameType: 0, reason: ByteBuffer())
        }
        let limit = max(datagramLimit, 0)
        guard limit >= Self.minimumPacketRoom else { return nil }
        var datagram = allocator.buffer(capacity: limit)
        spaces[index].probesWanted = 0
        let packet = startPacket(space: index, key: key, numberLength: 4, into: &datagram)
        spaces[index].nextPacketNumber += 1
        let room = limit - datagram.writerIndex - QUICPacketKey.tagLength
        if frame.reason.readableBytes > room - 24 {
            frame.reason =
                frame.reason.getSlice(at: frame.reason.readerIndex, length: max(0, room - 24)) ?? ByteBuffer()
        }
        Frame.connectionClose(frame).encode(into: &datagram)
        seal(packet, into: &datagram, now: .now())
        bytesSent += datagram.readableBytes
        return datagram
    }
}
