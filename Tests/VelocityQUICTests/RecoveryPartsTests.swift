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
        var reno = NewReno(maxDatagramSize: 1200)
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

    @Test func rttFollowsSamplesAndSubtractsAckDelay() {
        var rtt = RTTEstimator()
        rtt.add(sample: .milliseconds(100), ackDelay: .zero)
        #expect(rtt.smoothed == .milliseconds(100) && rtt.minimum == .milliseconds(100))
        rtt.add(sample: .milliseconds(120), ackDelay: .milliseconds(20))
        #expect(rtt.smoothed == .milliseconds(100))
        #expect(rtt.probeTimeout > rtt.smoothed)
    }
}
