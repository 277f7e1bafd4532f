import NIOCore

/// A new client address being checked (RFC 9000 §8.2, §9): until the client echoes the challenge from there,
/// the server sends at most three times what it received on that path, and if it never does, the server goes
/// back to the address it last validated.
struct PathValidation {
    var challenge: UInt64
    var deadline: NIODeadline
    var previous: SocketAddress
    /// The PATH_CHALLENGE still has to be sent (again, after a loss).
    var challengeOwed = true
}

extension QUICConnection {
    /// The client sent a non-probing packet with its highest packet number from `address`: it moved, or a NAT
    /// rebound it (RFC 9000 §9.3). Congestion and RTT state start over unless only the port changed.
    func migrate(to address: SocketAddress, now: NIODeadline) {
        let previous = pathValidation?.previous ?? remoteAddress
        if address.ipAddress != remoteAddress.ipAddress {
            congestion = CongestionController(settings.congestionControl, maxDatagramSize: settings.maxDatagramSize)
            rtt = RTTEstimator()
        }
        remoteAddress = address
        addressValidated = false
        // The new path's budget starts with the datagram that moved the connection, counted by `receive`.
        bytesReceived = 0
        bytesSent = 0
        pathValidation = PathValidation(
            challenge: UInt64.random(in: 0...UInt64.max),
            deadline: now + .nanoseconds(max(3 * currentProbeTimeout.nanoseconds, TimeAmount.seconds(1).nanoseconds)),
            previous: previous)
    }

    func pathResponseReceived(_ data: UInt64) {
        guard let validation = pathValidation, validation.challenge == data else { return }
        addressValidated = true
        pathValidation = nil
    }

    /// A path that was never confirmed is given up for the last validated one.
    func checkPathValidation(now: NIODeadline) {
        guard let validation = pathValidation, now >= validation.deadline else { return }
        remoteAddress = validation.previous
        addressValidated = true
        pathValidation = nil
    }
}
