/// Whether the path carries ECN marks both ways (RFC 9000 §13.4.2): the first packets go out marked ECT(0),
/// and marking continues only once the client's ACK frames count them; a client or path that loses or
/// bleaches the marks turns marking off for the connection.
struct ECNValidation {
    private enum State {
        /// Marking the first packets, up to ``ECNValidation/testingPackets``.
        case testing(marked: Int)
        /// The test packets are out; marking waits for an ACK to confirm them.
        case unknown
        case capable
        case failed
    }

    private static let testingPackets = 10
    private var state = State.testing(marked: 0)
    /// The counts the client last reported, per packet number space.
    private var reported = [
        ECNCounts(ect0: 0, ect1: 0, ce: 0), ECNCounts(ect0: 0, ect1: 0, ce: 0),
        ECNCounts(ect0: 0, ect1: 0, ce: 0),
    ]

    var marksPackets: Bool {
        switch state {
        case .testing, .capable: true
        case .unknown, .failed: false
        }
    }

    mutating func onSent(marked: Bool) {
        guard marked, case .testing(let count) = state else { return }
        state = count + 1 >= Self.testingPackets ? .unknown : .testing(marked: count + 1)
    }

    /// Checks the counts of an ACK that newly acknowledged `markedPackets` marked packets in `space`; returns
    /// whether the path reported congestion (the CE count grew), which counts as a loss would.
    mutating func onAcknowledged(markedPackets: Int, counts: ECNCounts?, space: Int) -> Bool {
        if case .failed = state { return false }
        guard let counts else {
            if markedPackets > 0 { state = .failed }
            return false
        }
        let previous = reported[space]
        guard counts.ect0 >= previous.ect0, counts.ect1 >= previous.ect1, counts.ce >= previous.ce,
            counts.ect1 == previous.ect1,
            (counts.ect0 - previous.ect0) + (counts.ce - previous.ce) >= UInt64(markedPackets)
        else {
            state = .failed
            return false
        }
        reported[space] = counts
        if markedPackets > 0 { state = .capable }
        return counts.ce > previous.ce
    }
}
