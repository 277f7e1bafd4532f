import NIOCore
import NIOHTTP1
import NIOPosix
import VelocityConfig
import VelocityHTTP

/// Sends a file range in chunks: each is read (and compressed) on the thread pool, then written, and the next
/// read starts only when the write has gone out, so a slow reader holds one chunk and no thread.
final class FileStreamer {
    /// The buffers and compressor one stream reuses. Exactly one side touches it at a time: the pool job
    /// while a chunk is being read, the event loop while it is written.
    private final class Buffers: @unchecked Sendable {
        var chunk = ByteBuffer()
        var output = ByteBuffer()
        let compressor: Compressor?

        init(compressor: Compressor?) {
            self.compressor = compressor
        }
    }

    private struct Truncated: Error {}

    static let chunkSize = 64 * 1024

    private let context: ChannelHandlerContext
    private let body: FileBody
    private let buffers: Buffers
    private var position: Int
    private var sent = 0
    private let finished: (Int, Bool) -> Void

    /// `finished` gets the body bytes sent and whether the whole body went out.
    init(
        context: ChannelHandlerContext, body: FileBody, compressor: Compressor?,
        finished: @escaping (Int, Bool) -> Void
    ) {
        self.context = context
        self.body = body
        buffers = Buffers(compressor: compressor)
        position = body.offset
        self.finished = finished
    }

    func start() {
        readNext()
    }

    private func readNext() {
        let end = body.offset + body.length
        let count = min(Self.chunkSize, end - position)
        let (file, offset, buffers) = (body.file, position, self.buffers)
        let last = position + count == end
        NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) {
            buffers.chunk.clear()
            let read = try file.read(into: &buffers.chunk, at: offset, count: count)
            guard read == count else { throw Truncated() }
            if let compressor = buffers.compressor {
                buffers.output.clear()
                compressor.compress(buffers.chunk, into: &buffers.output, finish: last)
            }
        }.assumeIsolated().whenComplete { [self] result in
            guard case .success = result else { return finished(sent, false) }
            position += count
            let data = buffers.compressor == nil ? buffers.chunk : buffers.output
            guard data.readableBytes > 0 else { return last ? finished(sent, true) : readNext() }
            sent += data.readableBytes
            context.writeAndFlush(NIOAny(HTTPServerResponsePart.body(.byteBuffer(data)))).assumeIsolated()
                .whenComplete { [self] result in
                    guard case .success = result else { return finished(sent, false) }
                    if last { finished(sent, true) } else { readNext() }
                }
        }
    }
}
