import NIOCore

/// Writes the datagrams connections build to a UDP channel, for the server's and the client's endpoints.
struct DatagramWriter {
    /// The socket may be given several datagrams in one buffer (Linux UDP_SEGMENT).
    let segmentationOffload: Bool
    /// Datagrams per offloaded write; the kernel's limit is 64.
    private static let maxSegments = 64

    /// Writes without flushing; with segmentation offload, runs of equal-size datagrams to one address go to
    /// the kernel as one buffer it splits, which saves a system call per datagram on bulk transfers.
    func write(_ datagrams: [OutgoingDatagram], context: ChannelHandlerContext) {
        var index = 0
        while index < datagrams.count {
            let first = datagrams[index]
            let size = first.data.readableBytes
            var end = index + 1
            if segmentationOffload {
                // Equal sizes, and a shorter last one, to one address with one marking may share a write.
                while end < datagrams.count, end - index < Self.maxSegments, datagrams[end].address == first.address,
                    datagrams[end].ecnMarked == first.ecnMarked, datagrams[end - 1].data.readableBytes == size,
                    datagrams[end].data.readableBytes <= size
                {
                    end += 1
                }
            }
            var data = first.data
            if end - index > 1 {
                data = context.channel.allocator.buffer(capacity: size * (end - index))
                for position in index..<end { data.writeImmutableBuffer(datagrams[position].data) }
            }
            let metadata = AddressedEnvelope<ByteBuffer>.Metadata(
                ecnState: first.ecnMarked ? .transportCapableFlag0 : .transportNotCapable, packetInfo: nil,
                segmentSize: end - index > 1 ? size : nil)
            context.write(
                NIOAny(AddressedEnvelope(remoteAddress: first.address, data: data, metadata: metadata)), promise: nil)
            index = end
        }
    }

    /// Calls `body` with each datagram of a read: with receive offload the kernel hands over several datagrams
    /// of one size at once.
    static func split(_ envelope: AddressedEnvelope<ByteBuffer>, _ body: (ByteBuffer) -> Void) {
        guard let segment = envelope.metadata?.segmentSize, segment > 0, envelope.data.readableBytes > segment else {
            return body(envelope.data)
        }
        var offset = 0
        while offset < envelope.data.readableBytes {
            let length = min(segment, envelope.data.readableBytes - offset)
            body(envelope.data.getSlice(at: envelope.data.readerIndex + offset, length: length)!)
            offset += length
        }
    }
}

/// One timer per connection, scheduled again only when its deadline moves: for both endpoints.
struct ConnectionTimers {
    private var timers: [ConnectionID: (deadline: NIODeadline, task: Scheduled<Void>)] = [:]

    /// Runs `fire` at `deadline` for the connection with `id`, replacing its earlier timer.
    mutating func set(
        _ id: ConnectionID, deadline: NIODeadline, on eventLoop: any EventLoop, fire: @escaping () -> Void
    ) {
        if let timer = timers[id] {
            if timer.deadline == deadline { return }
            timer.task.cancel()
        }
        let task = eventLoop.assumeIsolated().scheduleTask(deadline: deadline, fire)
        timers[id] = (deadline, task)
    }

    /// The timer fired: it no longer needs cancelling.
    mutating func fired(_ id: ConnectionID) {
        timers[id] = nil
    }

    mutating func cancel(_ id: ConnectionID) {
        timers.removeValue(forKey: id)?.task.cancel()
    }

    mutating func cancelAll() {
        for timer in timers.values { timer.task.cancel() }
        timers = [:]
    }
}
