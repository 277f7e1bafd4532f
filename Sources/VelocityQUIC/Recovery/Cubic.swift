import Foundation
import NIOCore

/// CUBIC's window growth (RFC 9438): after a reduction the window follows a cubic curve that returns quickly
/// to where loss struck (W_max), flattens there, then probes beyond; never slower than Reno would grow.
struct Cubic {
    private static let c = 0.4
    private static let beta = 0.7
    /// Reno-friendly additive increase for beta 0.7 (§4.3).
    private static let alpha = 3 * (1 - beta) / (1 + beta)

    let maxDatagramSize: Int
    /// The window, in datagrams, when loss last struck.
    private var maximum = 0.0
    private var epochStart: NIODeadline?
    /// Time from the epoch start until the curve is back at `maximum`, in seconds.
    private var k = 0.0
    /// The window Reno would have, in datagrams.
    private var renoEstimate = 0.0

    init(maxDatagramSize: Int) {
        self.maxDatagramSize = maxDatagramSize
    }

    /// The reduced window after a congestion event; starts a new epoch.
    mutating func reduce(_ window: Int, now: NIODeadline) -> Int {
        let current = Double(window) / Double(maxDatagramSize)
        // Fast convergence: a flow losing before it regained its last maximum yields to newer flows (§4.7).
        maximum = current < maximum ? current * (1 + Self.beta) / 2 : current
        epochStart = nil
        return Int(current * Self.beta * Double(maxDatagramSize))
    }

    /// The window after `bytes` more were acknowledged in congestion avoidance.
    mutating func window(
        afterAcknowledging bytes: Int, current window: Int, now: NIODeadline, smoothedRTT: TimeAmount
    ) -> Int {
        let current = Double(window) / Double(maxDatagramSize)
        if epochStart == nil {
            epochStart = now
            if maximum < current { maximum = current }
            k = cbrt(max(0, maximum - current) / Self.c)
            renoEstimate = current
        }
        let elapsed = Double((now - epochStart!).nanoseconds + smoothedRTT.nanoseconds) / 1e9
        let target = Self.c * pow(elapsed - k, 3) + maximum
        renoEstimate += Self.alpha * Double(bytes) / Double(window)
        // Grow towards the curve by at most half the window per round trip (§4.2), never below Reno.
        let cubicWindow = min(max(target, current), 1.5 * current)
        let next = max(current + (cubicWindow - current) * Double(bytes) / Double(window), renoEstimate)
        return max(window, Int(next * Double(maxDatagramSize)))
    }
}
