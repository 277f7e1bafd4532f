import NIOCore
import VelocityQUIC

extension ByteBuffer {
    /// Writes a frame's type and payload length (RFC 9114 §7.1); the caller writes the payload next.
    /// Returns the bytes written.
    @discardableResult
    mutating func writeHTTP3FrameHeader(type: UInt64, length: Int) -> Int {
        writeQUICVarInt(type) + writeQUICVarInt(UInt64(length))
    }

    /// Writes a whole SETTINGS frame. Returns the bytes written.
    @discardableResult
    mutating func writeHTTP3Settings(_ settings: HTTP3Settings) -> Int {
        // Once per connection, so a scratch buffer for the payload costs nothing worth saving.
        var payload = ByteBuffer()
        settings.write(into: &payload)
        return writeHTTP3FrameHeader(type: HTTP3FrameType.settings, length: payload.readableBytes)
            + writeImmutableBuffer(payload)
    }

    /// Writes a whole GOAWAY frame carrying `id`: the first request stream ID the server will not process,
    /// or for a client, the first push ID it will not accept. Returns the bytes written.
    @discardableResult
    mutating func writeHTTP3Goaway(_ id: UInt64) -> Int {
        writeHTTP3FrameHeader(type: HTTP3FrameType.goaway, length: VarInt.size(id)) + writeQUICVarInt(id)
    }
}
