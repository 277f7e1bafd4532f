import NIOCore

/// NewReno congestion control (RFC 9002 §7): slow start, congestion avoidance, one window reduction per
/// recovery period.
struct NewReno {
    let maxDatagramSize: Int
    private(set) var window: Int
    private(set) var bytesInFlight = 0
    private var slowStartThreshold = Int.max
    private var recoveryStart: NIODeadline?
    /// Bytes acknowledged in congestion avoidance since the window last grew.
    private var acknowledgedSinceGrowth = 0

    init(maxDatagramSize: Int) {
        self.maxDatagramSize = maxDatagramSize
        window = min(10 * maxDatagramSize, max(2 * maxDatagramSize, 14720))
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

    mutating func onAcknowledged(bytes: Int, sentAt: NIODeadline) {
        onRemoved(bytes: bytes)
        if let recoveryStart, sentAt <= recoveryStart { return }
        if window < slowStartThreshold {
            window += bytes
        } else {
            acknowledgedSinceGrowth += bytes
            if acknowledgedSinceGrowth >= window {
                acknowledgedSinceGrowth -= window
                window += maxDatagramSize
            }
        }
    }

    /// A packet sent at `sentAt` was declared lost at `now`.
    mutating func onLost(bytes: Int, sentAt: NIODeadline, now: NIODeadline) {
        onRemoved(bytes: bytes)
        if let recoveryStart, sentAt <= recoveryStart { return }
        recoveryStart = now
        window = max(window / 2, minimumWindow)
        slowStartThreshold = window
        acknowledgedSinceGrowth = 0
    }

    /// Persistent congestion (§7.6): every packet over a long span was lost.
    mutating func onPersistentCongestion() {
        window = minimumWindow
        recoveryStart = nil
    }
}
