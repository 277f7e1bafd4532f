import NIOCore

/// Round-trip time estimation (RFC 9002 §5).
struct RTTEstimator {
    /// Before the first sample. RFC 9002 suggests 333 ms; 100 ms, as browsers use, makes a lost first flight
    /// cost a tenth of a second instead of a second, and samples replace it within one round trip.
    static let initial = TimeAmount.milliseconds(100)

    private(set) var latest = initial
    private(set) var smoothed = initial
    private(set) var variation = TimeAmount.milliseconds(50)
    private(set) var minimum: TimeAmount = .zero
    private(set) var hasSample = false

    /// `ackDelay` is what the peer reported, already capped at its max_ack_delay once the handshake is confirmed.
    mutating func add(sample: TimeAmount, ackDelay: TimeAmount) {
        latest = sample
        guard hasSample else {
            hasSample = true
            minimum = sample
            smoothed = sample
            variation = .nanoseconds(sample.nanoseconds / 2)
            return
        }
        minimum = min(minimum, sample)
        // The peer's delay is only subtracted when what is left still exceeds the minimum (§5.3).
        let adjusted = sample >= minimum + ackDelay ? sample - ackDelay : sample
        let deviation = abs(smoothed.nanoseconds - adjusted.nanoseconds)
        variation = .nanoseconds((3 * variation.nanoseconds + deviation) / 4)
        smoothed = .nanoseconds((7 * smoothed.nanoseconds + adjusted.nanoseconds) / 8)
    }

    /// The probe timeout before backoff, without the peer's max_ack_delay (§6.2.1).
    var probeTimeout: TimeAmount {
        smoothed + max(.nanoseconds(4 * variation.nanoseconds), .milliseconds(1))
    }

    /// How long after a later packet was acknowledged an older one counts as lost (§6.1.2).
    var lossDelay: TimeAmount {
        max(.nanoseconds(max(latest, smoothed).nanoseconds * 9 / 8), .milliseconds(1))
    }
}
