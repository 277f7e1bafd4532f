import NIOCore

/// The connection IDs this server gives the client (RFC 9000 §5.1): spare IDs let the client change IDs when
/// it changes networks, so an observer cannot link its paths. Each comes with a stateless reset token.
extension QUICConnection {
    /// How many IDs the client holds at once, at most; it asks for fewer with active_connection_id_limit.
    static let issuedIDLimit: UInt64 = 4

    /// Tops the client's spare IDs up to the limit both sides allow. Called once the handshake completes and
    /// after each retirement.
    func issueConnectionIDs() {
        guard let issue = issueConnectionID else { return }
        let limit = min(Self.issuedIDLimit, peerParameters?.activeConnectionIDLimit ?? 2)
        while UInt64(localIDs.count) < limit {
            let (id, token) = issue()
            let frame = NewConnectionIDFrame(
                sequence: nextLocalIDSequence, retirePriorTo: 0, connectionID: id, resetToken: token)
            localIDs.append((nextLocalIDSequence, id))
            nextLocalIDSequence += 1
            pendingNewIDs.append(frame)
        }
    }

    /// The client no longer uses the ID with `sequence`: it stops routing here and a new one replaces it.
    func retireConnectionID(sequence: UInt64, packetDestination: ConnectionID) throws(TransportError) {
        guard sequence < nextLocalIDSequence else {
            throw .protocolViolation("RETIRE_CONNECTION_ID of an ID never issued")
        }
        guard let index = localIDs.firstIndex(where: { $0.sequence == sequence }) else { return }
        guard localIDs[index].id != packetDestination else {
            throw .protocolViolation("RETIRE_CONNECTION_ID of the ID the packet was sent to")
        }
        retireLocalID?(localIDs[index].id)
        localIDs.remove(at: index)
        issueConnectionIDs()
    }

    /// Every ID that routes to this connection, for the endpoint to forget it.
    var routingIDs: [ConnectionID] {
        localIDs.map(\.id) + (localIDs.contains { $0.id == initialDestination } ? [] : [initialDestination])
    }
}
