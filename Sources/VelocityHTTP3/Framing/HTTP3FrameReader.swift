import NIOCore
import VelocityQUIC

/// Splits the bytes of one stream, a request stream or a control stream, into frames (RFC 9114 §7), in
/// bounded memory whatever pieces the bytes arrive in. DATA payloads pass through as they arrive, without
/// waiting for the end of their frame; every other frame is delivered whole, so its size is limited.
/// Unknown frame types are skipped as they arrive. Which frames a stream allows is up to the caller.
struct HTTP3FrameReader {
    /// The largest SETTINGS payload accepted. A well-formed one could be larger, with many unknown settings,
    /// so going over is H3_EXCESSIVE_LOAD, the code for load this endpoint declines (RFC 9114 §10.5), not a
    /// framing error. The frames made of one integer have a tighter bound, see ``start(type:length:)``.
    static let maxSettingsSize = 16 * 1024

    /// The largest HEADERS payload accepted; larger is H3_EXCESSIVE_LOAD.
    let maxHeadersSize: Int

    private enum State {
        /// Between frames: the next bytes are a frame header.
        case header
        /// Inside a DATA frame, with this much of its payload still to come.
        case data(remaining: UInt64)
        /// Waiting for the whole payload of a frame delivered whole.
        case payload(type: UInt64, length: Int)
        /// Inside an ignored frame, with this much of its payload still to come.
        case skip(remaining: UInt64)
    }

    private var state = State.header
    /// Bytes received and not yet delivered, possibly after delivered ones that an append drops when that is
    /// worth a copy.
    private var buffer = ByteBuffer()

    init(maxHeadersSize: Int = 64 * 1024) {
        self.maxHeadersSize = maxHeadersSize
    }

    /// True when no frame is partly read. A stream that ends while this is false ended inside a frame,
    /// which is H3_FRAME_ERROR.
    var isAtFrameBoundary: Bool {
        guard case .header = state else { return false }
        return buffer.readableBytes == 0
    }

    /// The bytes the reader holds, read or not: what it costs in memory.
    var bufferedBytes: Int { buffer.writerIndex }

    /// Adds the next bytes of the stream; ``next()`` then returns the frames they complete.
    mutating func append(_ bytes: ByteBuffer) {
        guard bytes.readableBytes > 0 else { return }
        if buffer.readableBytes == 0 {
            // Everything before was delivered: keep the new bytes as they are, which is the common case while
            // a DATA frame streams through, so that its payload is sliced out of them without a copy.
            buffer = bytes
        } else if buffer.readerIndex < buffer.readableBytes {
            // Little delivered yet: appending in place, with the storage's growth, costs less than a move.
            buffer.writeImmutableBuffer(bytes)
        } else {
            // Mostly delivered already: copy only what is left, into storage that fits the new bytes too.
            var joined = ByteBufferAllocator().buffer(capacity: buffer.readableBytes + bytes.readableBytes)
            joined.writeImmutableBuffer(buffer)
            joined.writeImmutableBuffer(bytes)
            buffer = joined
        }
    }

    /// The next frame, or the next part of a DATA payload, or nil when more bytes are needed. Errors are
    /// connection errors.
    mutating func next() throws(HTTP3Error) -> HTTP3Frame? {
        while true {
            switch state {
            case .header:
                let frameStart = buffer.readerIndex
                guard let type = buffer.readQUICVarInt(), let length = buffer.readQUICVarInt() else {
                    buffer.moveReaderIndex(to: frameStart)
                    return nil
                }
                if let frame = try start(type: type, length: length) { return frame }
            case .data(let remaining):
                guard buffer.readableBytes > 0 else { return nil }
                let count = Int(min(remaining, UInt64(buffer.readableBytes)))
                state = remaining == UInt64(count) ? .header : .data(remaining: remaining - UInt64(count))
                return .data(buffer.readSlice(length: count)!)
            case .payload(let type, let length):
                guard let payload = buffer.readSlice(length: length) else { return nil }
                state = .header
                return try Self.frame(type: type, payload: payload)
            case .skip(let remaining):
                guard buffer.readableBytes > 0 else { return nil }
                let count = Int(min(remaining, UInt64(buffer.readableBytes)))
                buffer.moveReaderIndex(forwardBy: count)
                state = remaining == UInt64(count) ? .header : .skip(remaining: remaining - UInt64(count))
            }
        }
    }

    /// Sets the state for a frame whose header was just read; returns the frame if the header alone is it.
    private mutating func start(type: UInt64, length: UInt64) throws(HTTP3Error) -> HTTP3Frame? {
        switch type {
        case HTTP3FrameType.data:
            // An empty DATA frame carries nothing to deliver.
            state = length == 0 ? .header : .data(remaining: length)
        case HTTP3FrameType.headers:
            guard length <= maxHeadersSize else {
                throw HTTP3Error(code: .excessiveLoad, reason: "HEADERS frame too large")
            }
            state = .payload(type: type, length: Int(length))
        case HTTP3FrameType.settings:
            guard length <= Self.maxSettingsSize else {
                throw HTTP3Error(code: .excessiveLoad, reason: "SETTINGS frame too large")
            }
            state = .payload(type: type, length: Int(length))
        case HTTP3FrameType.goaway, HTTP3FrameType.maxPushID, HTTP3FrameType.cancelPush:
            // One variable-length integer, at most 8 bytes: a longer payload is malformed, no need to read it.
            guard length <= 8 else { throw HTTP3Error(code: .frameError, reason: "malformed control frame") }
            state = .payload(type: type, length: Int(length))
        case HTTP3FrameType.pushPromise:
            state = length == 0 ? .header : .skip(remaining: length)
            return .pushPromise
        case _ where HTTP3FrameType.isReservedHTTP2(type):
            throw HTTP3Error(code: .frameUnexpected, reason: "HTTP/2 frame type")
        default:
            // Unknown types, the reserved 0x1f * N + 0x21 among them, must be ignored (RFC 9114 §9).
            state = length == 0 ? .header : .skip(remaining: length)
        }
        return nil
    }

    private static func frame(type: UInt64, payload: ByteBuffer) throws(HTTP3Error) -> HTTP3Frame {
        switch type {
        case HTTP3FrameType.headers:
            return .headers(payload)
        case HTTP3FrameType.settings:
            return .settings(try HTTP3Settings.parse(payload))
        default:
            var payload = payload
            guard let value = payload.readQUICVarInt(), payload.readableBytes == 0 else {
                throw HTTP3Error(code: .frameError, reason: "malformed control frame")
            }
            switch type {
            case HTTP3FrameType.goaway: return .goaway(value)
            case HTTP3FrameType.maxPushID: return .maxPushID(value)
            default: return .cancelPush(value)
            }
        }
    }
}
