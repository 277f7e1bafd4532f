import NIOCore

/// One stream's state on both sides (RFC 9000 §2–4): reassembly and flow control of what the peer sends,
/// buffering and the peer's limit for what the application sends.
struct QUICStream {
    let id: UInt64
    /// This side opened the stream.
    let isLocal: Bool

    var receive = ReassemblyBuffer()
    /// Set by a FIN or RESET_STREAM; data beyond it is a FINAL_SIZE_ERROR.
    var finalSize: UInt64?
    var finDelivered = false
    /// The offset the peer may send up to; raised as the application reads.
    var receiveLimit: UInt64
    let receiveWindow: UInt64
    /// A MAX_STREAM_DATA frame with the current limit is owed.
    var sendsLimitUpdate = false
    /// The application holds back delivery (and so the credit it would return) until it reads again.
    var isPaused = false
    /// The application stopped reading: what arrives is dropped, and STOP_SENDING asks the peer to stop.
    var readAbandoned = false
    /// The error code of a STOP_SENDING frame to send.
    var pendingStopSending: UInt64?

    var send = SendBuffer()
    /// The offset the peer lets us send up to.
    var sendLimit: UInt64
    /// The peer asked us to stop (STOP_SENDING) or we reset: nothing more is sent.
    var sendClosed = false
    var pendingReset: (errorCode: UInt64, finalSize: UInt64)?
    /// Packets carrying this stream's frames that are neither acknowledged nor lost: the stream stays until
    /// none is left, so lost data can still be sent again.
    var inFlightFrames = 0
    /// In the connection's queue of streams with something to send.
    var isScheduled = false

    init(id: UInt64, isLocal: Bool, receiveWindow: UInt64, sendLimit: UInt64) {
        self.id = id
        self.isLocal = isLocal
        self.receiveLimit = receiveWindow
        self.receiveWindow = receiveWindow
        self.sendLimit = sendLimit
    }

    /// Bit 1 of the ID marks unidirectional streams (§2.1).
    static func isBidirectional(_ id: UInt64) -> Bool { id & 0x2 == 0 }

    /// Whether everything is done both ways, so the stream can be forgotten. A unidirectional stream has
    /// only one way: sending when we opened it, receiving when the peer did.
    var isFinished: Bool {
        let receiveDone = finDelivered || !Self.isBidirectional(id) && isLocal
        let sendDone =
            sendClosed && pendingReset == nil
            || send.finSent && !send.hasPending
            || !Self.isBidirectional(id) && !isLocal
        return receiveDone && sendDone
    }

    /// After delivering data: raises the limit once half the window is used, so a steady sender never stalls.
    mutating func consumed() {
        let delivered = receive.readOffset
        if finalSize == nil, !readAbandoned, receiveLimit - delivered < receiveWindow / 2 {
            receiveLimit = delivered + receiveWindow
            sendsLimitUpdate = true
        }
    }
}
