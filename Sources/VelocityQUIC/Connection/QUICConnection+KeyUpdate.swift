import VelocityTLS

/// Key updates (RFC 9001 §6): either side may move the 1-RTT keys to their next generation, which flips the
/// key phase bit; the other side follows when it first reads the new phase. Packets reordered across an
/// update still open with the previous read key.
extension QUICConnection {
    /// The key for a packet of space `index`: for 1-RTT, the key of its phase (RFC 9001 §6.3).
    func readKey(index: Int, phase: Bool, number: UInt64) -> QUICPacketKey? {
        guard index == 2, phase != keyPhase else { return spaces[index].readKey }
        if number < firstPacketOfPhase { return previousReadKey }
        // The peer started a key update; only allowed once the handshake is confirmed.
        guard state == .established, isHandshakeConfirmed else { return nil }
        if nextReadKey == nil { nextReadKey = spaces[2].readKey?.nextGeneration() }
        return nextReadKey
    }

    /// After a 1-RTT packet authenticated: a new phase from the peer moves our keys too; the peer's first
    /// packet in a phase we started marks where the previous read key ends.
    func keyPhaseReceived(_ phase: Bool, number: UInt64) {
        if phase != keyPhase {
            if number >= firstPacketOfPhase { updateKeys(firstPacket: number) }
        } else if number < firstPacketOfPhase {
            firstPacketOfPhase = number
        }
    }

    /// Moves both directions to the next key generation.
    private func updateKeys(firstPacket: UInt64) {
        previousReadKey = spaces[2].readKey
        spaces[2].readKey = nextReadKey ?? spaces[2].readKey?.nextGeneration()
        nextReadKey = nil
        spaces[2].writeKey = spaces[2].writeKey?.nextGeneration()
        keyPhase.toggle()
        firstPacketOfPhase = firstPacket
        firstSentOfPhase = spaces[2].nextPacketNumber
    }

    /// Starts a key update. Refused (false) before the handshake is confirmed, and until the peer has both
    /// followed the last update and acknowledged a packet under the current keys (RFC 9001 §6.1).
    @discardableResult
    public func initiateKeyUpdate() -> Bool {
        guard state == .established, isHandshakeConfirmed, firstPacketOfPhase != .max,
            let acknowledged = spaces[2].largestAcknowledged, acknowledged >= firstSentOfPhase
        else { return false }
        // Until the peer answers in the new phase, every packet of the old one is from before the update.
        updateKeys(firstPacket: .max)
        return true
    }
}
