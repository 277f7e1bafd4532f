import NIOCore
import Testing

@testable import VelocityQUIC

/// The value types under loss recovery and stream delivery.
@Suite struct RecoveryPartsTests {
    @Test func packetNumbersDecodeAsTheRFCShows() {
        // RFC 9000 Appendix A.3.
        #expect(PacketNumber.decode(truncated: 0x9b32, length: 2, largest: 0xa82f_30ea) == 0xa82f_9b32)
        #expect(PacketNumber.decode(truncated: 0, length: 1, largest: nil) == 0)
        #expect(PacketNumber.decode(truncated: 0x01, length: 1, largest: 0xff) == 0x101)
        #expect(PacketNumber.decode(truncated: 0xfe, length: 1, largest: 0x100) == 0xfe)
    }

    @Test func packetNumberLengthCoversTwiceTheUnacknowledgedRange() {
        #expect(PacketNumber.length(for: 0, largestAcked: nil) == 1)
        #expect(PacketNumber.length(for: 0xac5c02, largestAcked: 0xabe8b3) == 2)  // RFC 9000 A.2
        #expect(PacketNumber.length(for: 0xace8fe, largestAcked: 0xabe8b3) == 3)
    }

    @Test func receivedPacketsKeepDescendingDisjointRanges() {
        var received = ReceivedPackets()
        let now = NIODeadline.now()
        for number: UInt64 in [0, 1, 2, 5, 6, 9, 4, 3] {
            received.insert(number, isAckEliciting: true, now: now, ackDelay: .milliseconds(25))
        }
        #expect(received.ranges == [9...9, 0...6])
        received.insert(8, isAckEliciting: true, now: now, ackDelay: .milliseconds(25))
        received.insert(7, isAckEliciting: true, now: now, ackDelay: .milliseconds(25))
        #expect(received.ranges == [0...9])
        #expect(received.isDuplicate(4))
        #expect(!received.isDuplicate(10))
    }

    @Test func ackIsDueAtOnceForReorderingElseAfterTheDelayOrTwoPackets() {
        var received = ReceivedPackets()
        let now = NIODeadline.now()
        received.insert(0, isAckEliciting: true, now: now, ackDelay: .milliseconds(25))
        #expect(received.ackDeadline == now + .milliseconds(25))
        received.insert(1, isAckEliciting: true, now: now, ackDelay: .milliseconds(25))
        #expect(received.ackDeadline == now)
        received.onAckSent()
        received.insert(3, isAckEliciting: true, now: now, ackDelay: .milliseconds(25))
        #expect(received.ackDeadline == now)
        received.onAckSent()
        received.insert(4, isAckEliciting: false, now: now, ackDelay: .milliseconds(25))
        #expect(received.ackDeadline == nil)
    }

    @Test func reassemblyDeliversInOrderWhateverTheArrivalOrder() {
        var buffer = ReassemblyBuffer()
        buffer.insert(offset: 5, data: ByteBuffer(string: "fghij"))
        #expect(buffer.read() == nil)
        buffer.insert(offset: 3, data: ByteBuffer(string: "defg"))  // overlaps what follows
        buffer.insert(offset: 0, data: ByteBuffer(string: "abc"))
        var text = ""
        while let chunk = buffer.read() { text += String(buffer: chunk) }
        #expect(text == "abcdefghij")
        buffer.insert(offset: 2, data: ByteBuffer(string: "cdef"))  // already delivered
        #expect(buffer.read() == nil)
        #expect(buffer.readOffset == 10 && buffer.bufferedBytes == 0)
    }

    @Test func sendBufferSendsLostDataFirstAndRespectsTheFlowLimit() {
        var buffer = SendBuffer()
        buffer.append(ByteBuffer(string: "0123456789"))
        buffer.finish()
        let first = buffer.take(maxBytes: 4, flowLimit: 6)
        #expect(first?.offset == 0 && first.map { String(buffer: $0.data) } == "0123" && first?.fin == false)
        let second = buffer.take(maxBytes: 100, flowLimit: 6)
        #expect(second?.offset == 4 && second.map { String(buffer: $0.data) } == "45")
        #expect(buffer.take(maxBytes: 100, flowLimit: 6) == nil)
        buffer.requeue(offset: 0, data: ByteBuffer(string: "0123"), fin: false)
        let resent = buffer.take(maxBytes: 100, flowLimit: 6)
        #expect(resent?.offset == 0 && resent.map { String(buffer: $0.data) } == "0123")
        let last = buffer.take(maxBytes: 100, flowLimit: 100)
        #expect(last?.offset == 6 && last.map { String(buffer: $0.data) } == "6789" && last?.fin == true)
        #expect(!buffer.hasPending)
    }

    @Test func newRenoHalvesOncePerRecoveryPeriod() {
        var reno = CongestionController(.newReno, maxDatagramSize: 1200)
        let start = NIODeadline.now()
        let initial = reno.window
        reno.onSent(bytes: 1200)
        reno.onSent(bytes: 1200)
        reno.onLost(bytes: 1200, sentAt: start, now: start + .milliseconds(10))
        #expect(reno.window == initial / 2)
        reno.onLost(bytes: 1200, sentAt: start, now: start + .milliseconds(11))
        #expect(reno.window == initial / 2)
        #expect(reno.bytesInFlight == 0)
    }

    @Test func cubicCutsLessAndRegainsItsMaximumFasterThanReno() {
        let start = NIODeadline.now()
        var cubic = CongestionController(.cubic, maxDatagramSize: 1200)
        var reno = CongestionController(.newReno, maxDatagramSize: 1200)
        // Grow both to 100 datagrams in slow start, then lose a packet.
        for controller in [0, 1] {
            for _ in 0..<90 {
                if controller == 0 {
                    cubic.onSent(bytes: 1200)
                    cubic.onAcknowledged(bytes: 1200, sentAt: start, now: start, smoothedRTT: .milliseconds(20))
                } else {
                    reno.onSent(bytes: 1200)
                    reno.onAcknowledged(bytes: 1200, sentAt: start, now: start, smoothedRTT: .milliseconds(20))
                }
            }
        }
        #expect(cubic.window == 120_000 && reno.window == 120_000)
        let lossAt = start + .milliseconds(1)
        cubic.onSent(bytes: 1200)
        reno.onSent(bytes: 1200)
        cubic.onLost(bytes: 1200, sentAt: start, now: lossAt)
        reno.onLost(bytes: 1200, sentAt: start, now: lossAt)
        #expect(cubic.window == 84_000 && reno.window == 60_000)
        // Two seconds of full windows acknowledged, 100 ms apart (K is 4.2 s for W_max 100): CUBIC is back near
        // its maximum, while Reno has grown one datagram per round trip.
        var now = lossAt
        for _ in 0..<20 {
            now = now + .milliseconds(100)
            for _ in 0..<(cubic.window / 1200) {
                cubic.onSent(bytes: 1200)
                cubic.onAcknowledged(bytes: 1200, sentAt: now, now: now, smoothedRTT: .milliseconds(100))
            }
            for _ in 0..<(reno.window / 1200) {
                reno.onSent(bytes: 1200)
                reno.onAcknowledged(bytes: 1200, sentAt: now, now: now, smoothedRTT: .milliseconds(100))
            }
        }
        #expect(cubic.window > 100_000 && cubic.window <= 120_000 + 1200)
        #expect(reno.window == 84_000)
    }

    @Test func rttFollowsSamplesAndSubtractsAckDelay() {
        var rtt = RTTEstimator()
        rtt.add(sample: .milliseconds(100), ackDelay: .zero)
        #expect(rtt.smoothed == .milliseconds(100) && rtt.minimum == .milliseconds(100))
        rtt.add(sample: .milliseconds(120), ackDelay: .milliseconds(20))
        #expect(rtt.smoothed == .milliseconds(100))
        #expect(rtt.probeTimeout > rtt.smoothed)
    }

    @Test func pacerAllowsABurstThenSpacesDatagramsOverTheRoundTrip() {
        var pacer = Pacer(maxDatagramSize: 1000)
        let start = NIODeadline.now()
        // A 100 kB window over 100 ms paces at 1.25 kB per ms once the ten-datagram burst is spent.
        for _ in 0..<10 {
            #expect(pacer.check(size: 1000, window: 100_000, smoothedRTT: .milliseconds(100), now: start) == nil)
            pacer.onSent(bytes: 1000)
        }
        let wait = pacer.check(size: 1000, window: 100_000, smoothedRTT: .milliseconds(100), now: start)
        #expect(wait != nil && wait! - start > .microseconds(700) && wait! - start < .microseconds(900))
        #expect(pacer.check(size: 1000, window: 100_000, smoothedRTT: .milliseconds(100), now: wait!) == nil)
    }

    @Test func ecnMarksTenPacketsThenOnlyWhatTheClientConfirms() {
        var confirmed = ECNValidation()
        for _ in 0..<10 {
            #expect(confirmed.marksPackets)
            confirmed.onSent(marked: true)
        }
        #expect(!confirmed.marksPackets)
        var failed = confirmed
        // The client counts the marks: marking goes on; a CE mark is congestion.
        let counted = confirmed.onAcknowledged(
            markedPackets: 4, counts: ECNCounts(ect0: 4, ect1: 0, ce: 0), space: 2)
        #expect(!counted && confirmed.marksPackets)
        let congested = confirmed.onAcknowledged(
            markedPackets: 2, counts: ECNCounts(ect0: 5, ect1: 0, ce: 1), space: 2)
        #expect(congested)
        // Counts that fall short of the marked packets acknowledged mean the marks are lost on the way.
        _ = confirmed.onAcknowledged(markedPackets: 3, counts: ECNCounts(ect0: 6, ect1: 0, ce: 1), space: 2)
        #expect(!confirmed.marksPackets)
        // A client that sends no counts for marked packets fails the test too.
        _ = failed.onAcknowledged(markedPackets: 1, counts: nil, space: 2)
        #expect(!failed.marksPackets)
    }
}
