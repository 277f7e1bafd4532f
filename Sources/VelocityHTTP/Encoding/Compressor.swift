import CBrotli
import CZlib
import NIOCore
import VelocityConfig

/// Compresses a body that arrives in pieces. Each instance serves one response, used by one thread at a time
/// (the event loop, or the pool job reading the next piece of a file).
public final class Compressor: @unchecked Sendable {
    private enum State {
        case gzip(UnsafeMutablePointer<z_stream>)
        case brotli(OpaquePointer)
    }

    private let state: State
    /// Output space asked for per round; compressed data is never larger than this plus a little.
    private static let outputStep = 16 * 1024

    /// Moderate levels: compression runs per request, so speed matters more than the last few percent.
    public init(_ encoding: ContentEncoding) {
        switch encoding {
        case .gzip:
            let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            stream.initialize(to: z_stream())
            // 15 window bits + 16 asks zlib for a gzip wrapper rather than a zlib one.
            let status = deflateInit2_(
                stream, 5, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
                Int32(MemoryLayout<z_stream>.size))
            precondition(status == Z_OK, "zlib refused its own default parameters")
            state = .gzip(stream)
        case .br:
            let encoder = BrotliEncoderCreateInstance(nil, nil, nil)!
            BrotliEncoderSetParameter(encoder, BROTLI_PARAM_QUALITY, 4)
            state = .brotli(encoder)
        }
    }

    deinit {
        switch state {
        case .gzip(let stream):
            deflateEnd(stream)
            stream.deinitialize(count: 1)
            stream.deallocate()
        case .brotli(let encoder):
            BrotliEncoderDestroyInstance(encoder)
        }
    }

    /// Compresses `input` onto the end of `output`. `finish` ends the stream (nothing may follow); `flush`
    /// makes everything so far decodable now, for bodies whose pieces must reach the client as they come.
    public func compress(_ input: ByteBuffer, into output: inout ByteBuffer, finish: Bool = false, flush: Bool = false)
    {
        input.withUnsafeReadableBytes { input in
            switch state {
            case .gzip(let stream): Self.deflate(stream, input, into: &output, finish: finish, flush: flush)
            case .brotli(let encoder): Self.brotli(encoder, input, into: &output, finish: finish, flush: flush)
            }
        }
    }

    private static func deflate(
        _ stream: UnsafeMutablePointer<z_stream>, _ input: UnsafeRawBufferPointer, into output: inout ByteBuffer,
        finish: Bool, flush: Bool
    ) {
        let mode = finish ? Z_FINISH : flush ? Z_SYNC_FLUSH : Z_NO_FLUSH
        stream.pointee.next_in = UnsafeMutablePointer(
            mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = UInt32(input.count)
        while true {
            var status = Z_OK
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: outputStep) { space in
                stream.pointee.next_out = space.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = UInt32(space.count)
                status = CZlib.deflate(stream, mode)
                return space.count - Int(stream.pointee.avail_out)
            }
            // Done when all input is taken and zlib left output space unused (it has nothing more to give).
            if status == Z_STREAM_END || (stream.pointee.avail_in == 0 && stream.pointee.avail_out != 0) { break }
            if status != Z_OK && status != Z_BUF_ERROR { break }
        }
        stream.pointee.next_in = nil
    }

    private static func brotli(
        _ encoder: OpaquePointer, _ input: UnsafeRawBufferPointer, into output: inout ByteBuffer, finish: Bool,
        flush: Bool
    ) {
        let operation = finish ? BROTLI_OPERATION_FINISH : flush ? BROTLI_OPERATION_FLUSH : BROTLI_OPERATION_PROCESS
        var availableIn = input.count
        var nextIn = input.baseAddress?.assumingMemoryBound(to: UInt8.self)
        repeat {
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: outputStep) { space in
                var availableOut = space.count
                var nextOut: UnsafeMutablePointer<UInt8>? = space.baseAddress!.assumingMemoryBound(to: UInt8.self)
                _ = BrotliEncoderCompressStream(encoder, operation, &availableIn, &nextIn, &availableOut, &nextOut, nil)
                return space.count - availableOut
            }
        } while availableIn > 0 || BrotliEncoderHasMoreOutput(encoder) != 0
            || (finish && BrotliEncoderIsFinished(encoder) == 0)
    }
}
