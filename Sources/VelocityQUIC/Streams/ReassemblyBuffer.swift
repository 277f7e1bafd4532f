import NIOCore

/// Reorders byte ranges that arrive at arbitrary offsets, possibly overlapping or repeated, into one stream
/// (CRYPTO data per encryption level, and each stream's data). Chunks are slices of their datagrams.
struct ReassemblyBuffer {
    /// Everything before this offset has been delivered.
    private(set) var readOffset: UInt64 = 0
    /// Sorted by offset; may overlap.
    private var pending: [(offset: UInt64, data: ByteBuffer)] = []
    /// The highest offset seen, for flow control and final-size checks.
    private(set) var highestOffset: UInt64 = 0

    /// Bytes held that cannot be delivered yet.
    var bufferedBytes: Int { pending.reduce(0) { $0 + $1.data.readableBytes } }

    mutating func insert(offset: UInt64, data: ByteBuffer) {
        let end = offset + UInt64(data.readableBytes)
        highestOffset = max(highestOffset, end)
        guard end > readOffset, data.readableBytes > 0 else { return }
        var data = data
        var offset = offset
        if offset < readOffset {
            data.moveReaderIndex(forwardBy: Int(readOffset - offset))
            offset = readOffset
        }
        let index = pending.firstIndex { $0.offset > offset } ?? pending.endIndex
        pending.insert((offset, data), at: index)
    }

    /// Drops everything received, for a stream the application stopped reading; returns how many bytes that
    /// skipped, which go back to the connection's flow control as if read.
    mutating func discardAll() -> Int {
        defer {
            pending.removeAll()
            readOffset = highestOffset
        }
        return Int(highestOffset - readOffset)
    }

    /// The next bytes in order, or nil when the next offset has not arrived.
    mutating func read() -> ByteBuffer? {
        while let first = pending.first, first.offset <= readOffset {
            pending.removeFirst()
            let end = first.offset + UInt64(first.data.readableBytes)
            guard end > readOffset else { continue }
            var data = first.data
            data.moveReaderIndex(forwardBy: Int(readOffset - first.offset))
            readOffset = end
            return data
        }
        return nil
    }
}
