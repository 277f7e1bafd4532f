import NIOCore
import VelocityTLS

/// One of the three packet number spaces (RFC 9000 §12.3): Initial, Handshake and application data, each with
/// its own keys, packet numbers, acknowledgements and CRYPTO stream.
struct PacketNumberSpace {
    var readKey: QUICPacketKey?
    var writeKey: QUICPacketKey?
    /// Keys were discarded (RFC 9001 §4.9): packets of this space are neither sent nor accepted any more.
    var isDiscarded = false

    var nextPacketNumber: UInt64 = 0
    var largestAcknowledged: UInt64?
    /// In flight, in packet number order.
    var sent: [SentPacket] = []
    var received = ReceivedPackets()
    /// ECN codepoints of the packets received, reported back in ACK frames.
    var receivedECN = ECNCounts(ect0: 0, ect1: 0, ce: 0)

    var cryptoReceive = ReassemblyBuffer()
    var cryptoSend = SendBuffer()

    /// When the earliest unacknowledged packet counts as lost by time (RFC 9002 §6.1.2).
    var lossTime: NIODeadline?
    var lastAckElicitingSentAt: NIODeadline?
    /// Ack-eliciting packets the probe timeout wants sent in this space.
    var probesWanted = 0

    var hasAckElicitingInFlight: Bool { sent.contains { $0.isAckEliciting } }

    /// Drops the keys and everything in flight; returns the bytes that no longer count against the window.
    mutating func discard() -> Int {
        isDiscarded = true
        readKey = nil
        writeKey = nil
        let bytes = sent.reduce(0) { $0 + ($1.inFlight ? $1.size : 0) }
        sent = []
        lossTime = nil
        probesWanted = 0
        cryptoSend = SendBuffer()
        received.onAckSent()
        return bytes
    }
}
