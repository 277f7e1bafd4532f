import NIOCore

/// The packet numbers received in one packet number space, as the ranges an ACK frame reports
/// (RFC 9000 §13.2), and when an acknowledgement is due.
struct ReceivedPackets {
    /// Enough ranges for any reordering a healthy path shows; the oldest go first when there are more.
    private static let maxRanges = 32

    /// Disjoint, non-adjacent, in descending order.
    private(set) var ranges: [ClosedRange<UInt64>] = []
    private(set) var largestReceivedAt: NIODeadline?
    /// Ack-eliciting packets received since the last ACK frame was sent.
    private(set) var unacknowledgedElicitingCount = 0
    /// When an ACK must be sent at the latest; nil when none is owed.
    private(set) var ackDeadline: NIODeadline?
    /// A new range appeared since the last ACK frame was sent, so one is worth sending.
    private(set) var hasNewRanges = false

    var largest: UInt64? { ranges.first?.upperBound }

    func contains(_ number: UInt64) -> Bool {
        ranges.contains { $0.contains(number) }
    }

    /// Records a packet; the ACK is due at once for out-of-order arrivals, else after `ackDelay` or every
    /// second ack-eliciting packet (§13.2.1, §13.2.2).
    mutating func insert(_ number: UInt64, isAckEliciting: Bool, now: NIODeadline, ackDelay: TimeAmount) {
        let inOrder = largest.map { number == $0 + 1 } ?? true
        if let first = ranges.first, number == first.upperBound + 1 {
            ranges[0] = first.lowerBound...number
        } else {
            // `number` lies between ranges[index] (below it) and ranges[index - 1] (above it).
            let index = ranges.firstIndex { $0.lowerBound <= number } ?? ranges.endIndex
            if index < ranges.endIndex, ranges[index].upperBound >= number { return }
            let joinsBelow = index < ranges.endIndex && ranges[index].upperBound + 1 == number
            let joinsAbove = index > 0 && ranges[index - 1].lowerBound == number + 1
            switch (joinsBelow, joinsAbove) {
            case (true, true):
                ranges[index - 1] = ranges[index].lowerBound...ranges[index - 1].upperBound
                ranges.remove(at: index)
            case (true, false): ranges[index] = ranges[index].lowerBound...number
            case (false, true): ranges[index - 1] = number...ranges[index - 1].upperBound
            case (false, false): ranges.insert(number...number, at: index)
            }
        }
        if ranges.count > Self.maxRanges { ranges.removeLast() }
        if number == largest { largestReceivedAt = now }
        hasNewRanges = true
        guard isAckEliciting else { return }
        unacknowledgedElicitingCount += 1
        if !inOrder || unacknowledgedElicitingCount >= 2 || ackDelay == .zero {
            ackDeadline = now
        } else if ackDeadline == nil {
            ackDeadline = now + ackDelay
        }
    }

    /// Whether `number` arrived, or is older than anything still tracked (and so treated as a duplicate).
    func isDuplicate(_ number: UInt64) -> Bool {
        guard let last = ranges.last else { return false }
        return number < last.lowerBound || contains(number)
    }

    mutating func onAckSent() {
        unacknowledgedElicitingCount = 0
        ackDeadline = nil
        hasNewRanges = false
    }

    /// The peer has seen an ACK reporting up to `largest`: ranges below it need not be repeated (§13.2.4).
    mutating func peerAcknowledged(upTo largest: UInt64) {
        guard let newest = ranges.first else { return }
        ranges.removeAll { $0.upperBound < largest && $0 != newest }
    }
}
