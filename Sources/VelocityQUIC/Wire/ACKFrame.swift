import NIOCore

/// An ACK frame (RFC 9000 §19.3) with its gap and length fields turned into the packet number ranges they
/// describe.
struct ACKFrame: Equatable, Sendable {
    var largest: UInt64
    /// As sent: microseconds scaled down by the sender's ack_delay_exponent.
    var delay: UInt64
    /// Descending and not touching; the first ends at `largest`.
    var ranges: [ClosedRange<UInt64>]
    var ecn: ECNCounts?
}

/// The ECN codepoint counts of an ACK frame of type 0x03 (RFC 9000 §19.3.2).
struct ECNCounts: Equatable, Sendable {
    var ect0: UInt64
    var ect1: UInt64
    var ce: UInt64
}

extension ACKFrame {
    /// Reads the fields after the type byte. Every range must take at least two bytes, so a range count the
    /// rest of the packet cannot hold is refused before anything is allocated for it.
    static func parse(type: UInt64, from buffer: inout ByteBuffer) throws(TransportError) -> ACKFrame {
        let largest = try buffer.readVarInt(inFrame: type)
        let delay = try buffer.readVarInt(inFrame: type)
        let count = try buffer.readVarInt(inFrame: type)
        let first = try buffer.readVarInt(inFrame: type)
        guard first <= largest else { throw .frameEncoding("ACK range below packet number 0", frameType: type) }
        guard count <= UInt64(buffer.readableBytes / 2) else {
            throw .frameEncoding("ACK range count exceeds the frame", frameType: type)
        }
        var ranges: [ClosedRange<UInt64>] = []
        ranges.reserveCapacity(Int(count) + 1)
        var smallest = largest - first
        ranges.append(smallest...largest)
        for _ in 0..<count {
            let gap = try buffer.readVarInt(inFrame: type)
            let length = try buffer.readVarInt(inFrame: type)
            // The next range ends gap + 2 below the smallest of this one; neither end may go below zero.
            guard gap + 2 <= smallest, length <= smallest - gap - 2 else {
                throw .frameEncoding("ACK range below packet number 0", frameType: type)
            }
            let high = smallest - gap - 2
            smallest = high - length
            ranges.append(smallest...high)
        }
        var ecn: ECNCounts?
        if type == FrameType.ackECN {
            let ect0 = try buffer.readVarInt(inFrame: type)
            let ect1 = try buffer.readVarInt(inFrame: type)
            let ce = try buffer.readVarInt(inFrame: type)
            ecn = ECNCounts(ect0: ect0, ect1: ect1, ce: ce)
        }
        return ACKFrame(largest: largest, delay: delay, ranges: ranges, ecn: ecn)
    }

    func encode(into buffer: inout ByteBuffer) {
        precondition(!ranges.isEmpty && ranges[0].upperBound == largest, "ACK ranges must start at the largest")
        buffer.writeInteger(UInt8(ecn == nil ? FrameType.ack : FrameType.ackECN))
        buffer.writeQUICVarInt(largest)
        buffer.writeQUICVarInt(delay)
        buffer.writeQUICVarInt(UInt64(ranges.count - 1))
        buffer.writeQUICVarInt(largest - ranges[0].lowerBound)
        var previous = ranges[0].lowerBound
        for range in ranges.dropFirst() {
            assert(range.upperBound + 1 < previous, "ACK ranges must descend with a gap")
            buffer.writeQUICVarInt(previous - range.upperBound - 2)
            buffer.writeQUICVarInt(range.upperBound - range.lowerBound)
            previous = range.lowerBound
        }
        if let ecn {
            buffer.writeQUICVarInt(ecn.ect0)
            buffer.writeQUICVarInt(ecn.ect1)
            buffer.writeQUICVarInt(ecn.ce)
        }
    }

    /// How many bytes ``encode(into:)`` writes, for trimming ranges to fit a packet.
    var encodedSize: Int {
        var size = 1 + VarInt.size(largest) + VarInt.size(delay) + VarInt.size(UInt64(ranges.count - 1))
        size += VarInt.size(largest - ranges[0].lowerBound)
        var previous = ranges[0].lowerBound
        for range in ranges.dropFirst() {
            size += VarInt.size(previous - range.upperBound - 2) + VarInt.size(range.upperBound - range.lowerBound)
            previous = range.lowerBound
        }
        if let ecn { size += VarInt.size(ecn.ect0) + VarInt.size(ecn.ect1) + VarInt.size(ecn.ce) }
        return size
    }
}
