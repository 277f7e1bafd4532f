import NIOCore

/// Acknowledgements, loss detection and probe timeouts (RFC 9002 §6).
extension QUICConnection {
    /// Packets a newer acknowledged one must precede by before the older counts as lost (kPacketThreshold).
    private static let packetThreshold: UInt64 = 3

    func process(_ ack: ACKFrame, space index: Int, now: NIODeadline) throws(TransportError) {
        guard ack.largest < spaces[index].nextPacketNumber else {
            throw .protocolViolation("ACK of a packet never sent")
        }
        // Both lists are sorted, so one pass pairs them: packets ascending, ranges from the lowest.
        var acknowledged: [SentPacket] = []
        var sent = spaces[index].sent
        spaces[index].sent = []
        var kept = 0
        var range = ack.ranges.count - 1
        for position in sent.indices {
            let packet = sent[position]
            while range >= 0, ack.ranges[range].upperBound < packet.number { range -= 1 }
            if range >= 0, ack.ranges[range].contains(packet.number) {
                acknowledged.append(packet)
            } else {
                sent[kept] = packet
                kept += 1
            }
        }
        sent.removeLast(sent.count - kept)
        spaces[index].sent = sent
        guard let newest = acknowledged.last else { return }
        let raisesLargest = spaces[index].largestAcknowledged.map { ack.largest > $0 } ?? true
        spaces[index].largestAcknowledged = max(spaces[index].largestAcknowledged ?? 0, ack.largest)
        // Counts only grow, so an ACK that arrives late says nothing new about them (RFC 9000 §13.4.2.1).
        if raisesLargest,
            ecn.onAcknowledged(
                markedPackets: acknowledged.reduce(0) { $0 + ($1.ecnMarked ? 1 : 0) }, counts: ack.ecn, space: index)
        {
            congestion.onCongestion(sentAt: newest.sentAt, now: now)
        }
        if newest.number == ack.largest, acknowledged.contains(where: \.isAckEliciting) {
            // Only the application space reports a meaningful delay; it is capped at the agreed maximum.
            let exponent = peerParameters?.ackDelayExponent ?? 3
            let reported = TimeAmount.microseconds(Int64(clamping: ack.delay << exponent))
            rtt.add(sample: now - newest.sentAt, ackDelay: index == 2 ? min(reported, peerMaxAckDelay) : .zero)
        }
        for packet in acknowledged {
            if packet.inFlight {
                congestion.onAcknowledged(
                    bytes: packet.size, sentAt: packet.sentAt, now: now, smoothedRTT: rtt.smoothed)
            }
            for frame in packet.frames {
                switch frame {
                case .ack(let largest): spaces[index].received.peerAcknowledged(upTo: largest)
                case .stream(let id, _, _, _): streamFrameSettled(id)
                case .resetStream(let id, _, _): retireIfFinished(id)
                default: break
                }
            }
        }
        detectLostPackets(space: index, now: now)
        ptoCount = 0
        qlog?.metrics(window: congestion.window, bytesInFlight: congestion.bytesInFlight, rtt: rtt, now: now)
    }

    func detectLostPackets(space index: Int, now: NIODeadline) {
        guard let largest = spaces[index].largestAcknowledged else { return }
        let delay = rtt.lossDelay
        var lost: [SentPacket] = []
        var lossTime: NIODeadline?
        spaces[index].sent.removeAll { packet in
            guard packet.number <= largest else { return false }
            if packet.sentAt + delay <= now || largest >= packet.number + Self.packetThreshold {
                lost.append(packet)
                return true
            }
            lossTime = min(lossTime ?? packet.sentAt + delay, packet.sentAt + delay)
            return false
        }
        spaces[index].lossTime = lossTime
        if !lost.isEmpty {
            qlog?.packetsLost(type: Self.packetTypeName(space: index), numbers: lost.map(\.number), now: now)
        }
        for packet in lost {
            if packet.inFlight { congestion.onLost(bytes: packet.size, sentAt: packet.sentAt, now: now) }
            requeue(packet.frames, space: index)
        }
    }

    /// Puts what a lost packet carried back in line to be sent again, with current values where they change.
    func requeue(_ frames: [SentFrame], space index: Int) {
        for frame in frames {
            switch frame {
            case .crypto(let offset, let data):
                spaces[index].cryptoSend.requeue(offset: offset, data: data, fin: false)
            case .stream(let id, let offset, let data, let fin):
                guard var stream = streams[id] else { continue }
                stream.inFlightFrames -= 1
                if !stream.sendClosed {
                    stream.send.requeue(offset: offset, data: data, fin: fin)
                    scheduleSending(id)
                }
                streams[id] = stream
            case .handshakeDone: sendsHandshakeDone = true
            case .maxData: sendsMaxData = true
            case .maxStreamData(let id):
                streams[id]?.sendsLimitUpdate = true
                if streams[id] != nil { scheduleSending(id) }
            case .maxStreams(let bidirectional):
                if bidirectional { sendsMaxStreams.bidirectional = true } else { sendsMaxStreams.unidirectional = true }
            case .resetStream(let id, let errorCode, let finalSize):
                streams[id]?.pendingReset = (errorCode, finalSize)
                if streams[id] != nil { scheduleSending(id) }
            case .newConnectionID(let frame):
                // Only worth sending again while the ID is still in use.
                if localIDs.contains(where: { $0.sequence == frame.sequence }) { pendingNewIDs.append(frame) }
            case .pathChallenge:
                pathValidation?.challengeOwed = true
            case .newToken(let token):
                pendingAddressToken = token
            case .stopSending(let id, let errorCode):
                // Still worth asking while the peer keeps sending.
                if streams[id]?.finDelivered == false {
                    streams[id]!.pendingStopSending = errorCode
                    scheduleSending(id)
                }
            case .ack:
                break
            }
        }
    }

    private func streamFrameSettled(_ id: UInt64) {
        guard streams[id] != nil else { return }
        streams[id]!.inFlightFrames -= 1
        retireIfFinished(id)
    }

    var currentProbeTimeout: TimeAmount {
        .nanoseconds((rtt.probeTimeout + peerMaxAckDelay).nanoseconds << min(ptoCount, 16))
    }

    /// When loss detection next needs to run: a time-threshold loss, else the probe timeout of the space that
    /// sent an ack-eliciting packet longest ago.
    var lossDetectionDeadline: (deadline: NIODeadline, space: Int, isProbe: Bool)? {
        var earliest: (NIODeadline, Int, Bool)?
        for index in 0..<3 {
            if let time = spaces[index].lossTime, time < earliest?.0 ?? .distantFuture {
                earliest = (time, index, false)
            }
        }
        if let earliest { return earliest }
        // Until the client's address is validated, a server blocked by the amplification limit waits for it.
        if !addressValidated, bytesSent >= 3 * bytesReceived { return nil }
        // The application space has no probe timer until the handshake is confirmed (RFC 9002 §6.2.1).
        for index in 0..<3 where spaces[index].hasAckElicitingInFlight {
            guard index < 2 || isHandshakeConfirmed, let sentAt = spaces[index].lastAckElicitingSentAt else {
                continue
            }
            let base = index == 2 ? rtt.probeTimeout + peerMaxAckDelay : rtt.probeTimeout
            let deadline = sentAt + .nanoseconds(base.nanoseconds << min(ptoCount, 16))
            if deadline < earliest?.0 ?? .distantFuture { earliest = (deadline, index, true) }
        }
        // A client probes until the handshake is confirmed even with nothing in flight: the server may wait
        // at its amplification limit for more from us (RFC 9002 §6.2.2.1).
        if earliest == nil, role == .client, !isHandshakeConfirmed {
            let index = spaces[1].writeKey != nil ? 1 : 0
            let sentAt = spaces[index].lastAckElicitingSentAt ?? lastReceivedAt
            earliest = (sentAt + .nanoseconds(rtt.probeTimeout.nanoseconds << min(ptoCount, 16)), index, true)
        }
        return earliest
    }

    /// The handshake is confirmed: on the server when it completes, on the client with HANDSHAKE_DONE. Both
    /// drop their Handshake keys at that moment (RFC 9001 §4.1.2, §4.9.2).
    var isHandshakeConfirmed: Bool { spaces[1].isDiscarded }

    /// Runs whatever timer has expired: a delayed ACK is simply sent by the next flush; loss detection and
    /// the probe timeout act here; idle and closing timers end the connection.
    func handleTimeout(now: NIODeadline) {
        switch state {
        case .closing(let until), .draining(let until):
            if now >= until { finish() }
            return
        case .closed:
            return
        case .handshaking, .established:
            break
        }
        checkPathValidation(now: now)
        if now >= lastReceivedAt + idleTimeout {
            // Idle connections end silently (RFC 9000 §10.1).
            closeReason = closeReason ?? .idleTimeout
            finish()
            return
        }
        guard let (deadline, index, isProbe) = lossDetectionDeadline, deadline <= now else { return }
        if !isProbe {
            detectLostPackets(space: index, now: now)
            return
        }
        // A probe timeout: everything in flight in that space is sent again, which is also the probe
        // (RFC 9002 §6.2.4); the packets leave the congestion window without a loss signal.
        ptoCount += 1
        resend(space: index)
        spaces[index].probesWanted = 1
    }

    /// Sends everything of the Initial and Handshake spaces in flight again, as a probe would.
    func resendHandshakeFlight() {
        for index in 0..<2 where !spaces[index].isDiscarded { resend(space: index) }
    }

    /// Takes every packet of a space out of flight, without a congestion signal, and queues what it carried.
    func resend(space index: Int) {
        let packets = spaces[index].sent
        spaces[index].sent = []
        for packet in packets where packet.inFlight { congestion.onRemoved(bytes: packet.size) }
        for packet in packets { requeue(packet.frames, space: index) }
    }

    /// The next moment `handleTimeout` has something to do.
    var nextDeadline: NIODeadline? {
        switch state {
        case .closing(let until), .draining(let until): return until
        case .closed: return nil
        case .handshaking, .established: break
        }
        var deadline = lastReceivedAt + idleTimeout
        if let loss = lossDetectionDeadline { deadline = min(deadline, loss.deadline) }
        if let validation = pathValidation { deadline = min(deadline, validation.deadline) }
        if let pacing = pacingDeadline { deadline = min(deadline, pacing) }
        for index in 0..<3 where spaces[index].writeKey != nil {
            if let ack = spaces[index].received.ackDeadline { deadline = min(deadline, ack) }
        }
        return deadline
    }
}
