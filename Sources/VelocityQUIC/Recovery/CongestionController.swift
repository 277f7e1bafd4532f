import NIOCore

/// The congestion control algorithm of QUIC connections.
public enum CongestionControlAlgorithm: Sendable {
    case newReno
    /// RFC 9438, the default: grows back to the window where loss struck quickly, then probes carefully.
    case cubic
}

/// Congestion control (RFC 9002 §7): slow start, one window reduction per recovery period, persistent
/// congestion; the growth in congestion avoidance and the reduction factor are the algorithm's.
struct CongestionController {
    let maxDatagramSize: Int
    private(set) var window: Int
    private(set) var bytesInFlight = 0
    private var slowStartThreshold = Int.max
    private var recoveryStart: NIODeadline?
    private var growth: Growth

    private enum Growth {
        /// Bytes acknowledged since the window last grew by a datagram.
        case newReno(acknowledged: Int)
        case cubic(Cubic)
    }

    init(_ algorithm: CongestionControlAlgorithm, maxDatagramSize: Int) {
        self.maxDatagramSize = maxDatagramSize
        window = min(10 * maxDatagramSize, max(2 * maxDatagramSize, 14720))
        switch algorithm {
        case .newReno: growth = .newReno(acknowledged: 0)
        case .cubic: growth = .cubic(Cubic(maxDatagramSize: maxDatagramSize))
        }
    }

    private var minimumWindow: Int { 2 * maxDatagramSize }

    var available: Int { max(0, window - bytesInFlight) }

    mutating func onSent(bytes: Int) {
        bytesInFlight += bytes
    }

    /// Removes packets from flight without a congestion signal: discarded keys, or a probe timeout's resend.
    mutating func onRemoved(bytes: Int) {
        bytesInFlight = max(0, bytesInFlight - bytes)
    }

    mutating func onAcknowledged(bytes: Int, sentAt: NIODeadline, now: NIODeadline, smoothedRTT: TimeAmount) {
        onRemoved(bytes: bytes)
        if let recoveryStart, sentAt <= recoveryStart { return }
        if window < slowStartThreshold {
            window += bytes
            return
        }
        switch growth {
        case .newReno(var acknowledged):
            acknowledged += bytes
            if acknowledged >= window {
                acknowledged -= window
                window += maxDatagramSize
            }
            growth = .newReno(acknowledged: acknowledged)
        case .cubic(var cubic):
            window = cubic.window(afterAcknowledging: bytes, current: window, now: now, smoothedRTT: smoothedRTT)
            growth = .cubic(cubic)
        }
    }

    /// A packet sent at `sentAt` was declared lost at `now`.
    mutating func onLost(bytes: Int, sentAt: NIODeadline, now: NIODeadline) {
        onRemoved(bytes: bytes)
        onCongestion(sentAt: sentAt, now: now)
    }

    /// Loss, or an ECN congestion mark, of a packet sent at `sentAt`: the window shrinks once per recovery
    /// period.
    mutating func onCongestion(sentAt: NIODeadline, now: NIODeadline) {
        if let recoveryStart, sentAt <= recoveryStart { return }
        recoveryStart = now
        switch growth {
        case .newReno:
            window = max(window / 2, minimumWindow)
            growth = .newReno(acknowledged: 0)
        case .cubic(var cubic):
            window = max(cubic.reduce(window, now: now), minimumWindow)
            growth = .cubic(cubic)
        }
        slowStartThreshold = window
    }

    /// Persistent congestion (§7.6): every packet over a long span was lost.
    mutating func onPersistentCongestion() {
        window = minimumWindow
        recoveryStart = nil
    }
}
