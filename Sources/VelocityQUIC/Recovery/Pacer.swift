import NIOCore

/// Spreads a window's worth of packets over a round trip instead of sending them in one burst (RFC 9002
/// §7.7): a token bucket refilled at 1.25 × window / smoothed RTT, holding at most ten datagrams.
struct Pacer {
    private let burst: Int
    private var budget: Int
    private var updatedAt: NIODeadline?

    init(maxDatagramSize: Int) {
        burst = 10 * maxDatagramSize
        budget = burst
    }

    /// Bytes per nanosecond.
    private static func rate(window: Int, smoothedRTT: TimeAmount) -> Double {
        1.25 * Double(window) / Double(max(smoothedRTT.nanoseconds, 1))
    }

    /// Whether a datagram of `size` may go now; when not, when it may.
    mutating func check(size: Int, window: Int, smoothedRTT: TimeAmount, now: NIODeadline) -> NIODeadline? {
        let rate = Self.rate(window: window, smoothedRTT: smoothedRTT)
        if let updatedAt {
            let refill = Double((now - updatedAt).nanoseconds) * rate
            budget = min(burst, budget + Int(min(refill, Double(burst))))
        }
        updatedAt = now
        guard budget < size else { return nil }
        return now + .nanoseconds(Int64(Double(size - budget) / rate) + 1)
    }

    mutating func onSent(bytes: Int) {
        budget -= bytes
    }
}
