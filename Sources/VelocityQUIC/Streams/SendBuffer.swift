import NIOCore

/// Outgoing bytes of one stream or CRYPTO level: data not yet sent, and lost ranges to send again first.
/// Sent data is kept by the packets carrying it (``SentFrame``), so acknowledged bytes need no bookkeeping here.
struct SendBuffer {
    private var queue = CircularBuffer<ByteBuffer>()
    /// The stream offset of the first queued byte: everything before it has been sent at least once.
    private(set) var sendOffset: UInt64 = 0
    private var lost: [(offset: UInt64, data: ByteBuffer, fin: Bool)] = []
    private(set) var queuedBytes = 0
    /// The application has closed its side; the FIN goes with the last byte.
    private(set) var isFinished = false
    private(set) var finSent = false

    var hasPending: Bool { !lost.isEmpty || queuedBytes > 0 || (isFinished && !finSent) }
    /// Whether only lost data is waiting, which flow control has already allowed once.
    var hasRetransmission: Bool { !lost.isEmpty }
    /// The offset new data would be sent up to if everything queued went out.
    var endOffset: UInt64 { sendOffset + UInt64(queuedBytes) }

    mutating func append(_ data: ByteBuffer) {
        precondition(!isFinished, "no data after FIN")
        guard data.readableBytes > 0 else { return }
        queuedBytes += data.readableBytes
        queue.append(data)
    }

    mutating func finish() {
        isFinished = true
    }

    mutating func requeue(offset: UInt64, data: ByteBuffer, fin: Bool) {
        lost.append((offset, data, fin))
    }

    /// Takes up to `maxBytes` to send, lost data first; new data stops at `flowLimit` (a stream offset).
    mutating func take(maxBytes: Int, flowLimit: UInt64) -> (offset: UInt64, data: ByteBuffer, fin: Bool)? {
        if !lost.isEmpty {
            var chunk = lost[0]
            if chunk.data.readableBytes > maxBytes {
                let head = chunk.data.readSlice(length: maxBytes)!
                lost[0] = (chunk.offset + UInt64(maxBytes), chunk.data, chunk.fin)
                return (chunk.offset, head, false)
            }
            lost.removeFirst()
            return chunk
        }
        let allowed = Int(min(UInt64(maxBytes), flowLimit > sendOffset ? flowLimit - sendOffset : 0))
        guard allowed > 0 || (queuedBytes == 0 && isFinished && !finSent) else { return nil }
        var data: ByteBuffer
        if queue.isEmpty {
            data = ByteBuffer()
        } else if queue.first!.readableBytes <= allowed {
            data = queue.removeFirst()
        } else {
            data = queue[queue.startIndex].readSlice(length: allowed)!
        }
        let offset = sendOffset
        sendOffset += UInt64(data.readableBytes)
        queuedBytes -= data.readableBytes
        let fin = isFinished && queuedBytes == 0
        if fin { finSent = true }
        return (offset, data, fin)
    }
}
