import NIOCore

extension Frame {
    /// Reads one frame from a packet's decrypted payload. `buffer` must end where the packet does: a STREAM
    /// or DATAGRAM frame without a length takes the rest of it. Data is sliced from `buffer`, not copied.
    /// Anything malformed or cut short is a FRAME_ENCODING_ERROR naming the frame type; where the reader is
    /// left after a throw is unspecified.
    static func parse(from buffer: inout ByteBuffer) throws(TransportError) -> Frame {
        guard let first = buffer.readInteger(as: UInt8.self) else { throw .frameEncoding("missing frame") }
        let type = UInt64(first)
        switch first {
        case 0x00:
            let run = buffer.withUnsafeReadableBytes { bytes in bytes.firstIndex { $0 != 0 } ?? bytes.count }
            buffer.moveReaderIndex(forwardBy: run)
            return .padding(count: run + 1)
        case 0x01:
            return .ping
        case 0x02, 0x03:
            return .ack(try ACKFrame.parse(type: type, from: &buffer))
        case 0x04:
            let id = try buffer.readVarInt(inFrame: type)
            let errorCode = try buffer.readVarInt(inFrame: type)
            let finalSize = try buffer.readVarInt(inFrame: type)
            return .resetStream(id: id, errorCode: errorCode, finalSize: finalSize)
        case 0x05:
            let id = try buffer.readVarInt(inFrame: type)
            let errorCode = try buffer.readVarInt(inFrame: type)
            return .stopSending(id: id, errorCode: errorCode)
        case 0x06:
            let offset = try buffer.readVarInt(inFrame: type)
            let length = try buffer.readVarInt(inFrame: type)
            guard length <= VarInt.max - offset else {
                throw .frameEncoding("CRYPTO data beyond 2^62-1", frameType: type)
            }
            return .crypto(offset: offset, data: try buffer.readSlice(length: length, inFrame: type))
        case 0x07:
            let length = try buffer.readVarInt(inFrame: type)
            guard length > 0 else { throw .frameEncoding("empty NEW_TOKEN", frameType: type) }
            return .newToken(try buffer.readSlice(length: length, inFrame: type))
        case 0x08...0x0F:
            return .stream(try parseStream(flags: first, from: &buffer))
        case 0x10:
            return .maxData(try buffer.readVarInt(inFrame: type))
        case 0x11:
            let id = try buffer.readVarInt(inFrame: type)
            let maximum = try buffer.readVarInt(inFrame: type)
            return .maxStreamData(id: id, maximum: maximum)
        case 0x12, 0x13:
            let maximum = try buffer.readVarInt(inFrame: type)
            guard maximum <= maxStreamCount else { throw .frameEncoding("MAX_STREAMS above 2^60", frameType: type) }
            return .maxStreams(bidirectional: first == 0x12, maximum: maximum)
        case 0x14:
            return .dataBlocked(try buffer.readVarInt(inFrame: type))
        case 0x15:
            let id = try buffer.readVarInt(inFrame: type)
            let limit = try buffer.readVarInt(inFrame: type)
            return .streamDataBlocked(id: id, limit: limit)
        case 0x16, 0x17:
            let limit = try buffer.readVarInt(inFrame: type)
            guard limit <= maxStreamCount else {
                throw .frameEncoding("STREAMS_BLOCKED above 2^60", frameType: type)
            }
            return .streamsBlocked(bidirectional: first == 0x16, limit: limit)
        case 0x18:
            return .newConnectionID(try parseNewConnectionID(from: &buffer))
        case 0x19:
            return .retireConnectionID(sequence: try buffer.readVarInt(inFrame: type))
        case 0x1A, 0x1B:
            guard let data = buffer.readInteger(as: UInt64.self) else {
                throw .frameEncoding("frame ends early", frameType: type)
            }
            return first == 0x1A ? .pathChallenge(data) : .pathResponse(data)
        case 0x1C, 0x1D:
            let isApplication = first == 0x1D
            let errorCode = try buffer.readVarInt(inFrame: type)
            let frameType = try isApplication ? 0 : buffer.readVarInt(inFrame: type)
            let length = try buffer.readVarInt(inFrame: type)
            let reason = try buffer.readSlice(length: length, inFrame: type)
            return .connectionClose(
                ConnectionCloseFrame(
                    isApplication: isApplication, errorCode: errorCode, frameType: frameType, reason: reason))
        case 0x1E:
            return .handshakeDone
        case 0x30:
            return .datagram(buffer.readSlice(length: buffer.readableBytes)!)
        case 0x31:
            let length = try buffer.readVarInt(inFrame: type)
            return .datagram(try buffer.readSlice(length: length, inFrame: type))
        case 0x40...:
            // Every known type fits in one byte, so a longer type is either padded out or unknown.
            buffer.moveReaderIndex(to: buffer.readerIndex - 1)
            guard let long = buffer.readQUICVarInt() else { throw .frameEncoding("frame type ends early") }
            if long < 0x40 { throw .frameEncoding("frame type not minimally encoded", frameType: long) }
            throw .frameEncoding("unknown frame type", frameType: long)
        default:
            throw .frameEncoding("unknown frame type", frameType: type)
        }
    }

    private static func parseStream(flags: UInt8, from buffer: inout ByteBuffer) throws(TransportError) -> StreamFrame {
        let type = UInt64(flags)
        let id = try buffer.readVarInt(inFrame: type)
        let offset = try flags & StreamFrame.offsetBit != 0 ? buffer.readVarInt(inFrame: type) : 0
        let length: UInt64
        if flags & StreamFrame.lengthBit != 0 {
            length = try buffer.readVarInt(inFrame: type)
        } else {
            length = UInt64(buffer.readableBytes)
        }
        guard length <= VarInt.max - offset else { throw .frameEncoding("STREAM data beyond 2^62-1", frameType: type) }
        let data = try buffer.readSlice(length: length, inFrame: type)
        return StreamFrame(id: id, offset: offset, data: data, fin: flags & StreamFrame.finBit != 0)
    }

    private static func parseNewConnectionID(from buffer: inout ByteBuffer) throws(TransportError)
        -> NewConnectionIDFrame
    {
        let type = FrameType.newConnectionID
        let sequence = try buffer.readVarInt(inFrame: type)
        let retirePriorTo = try buffer.readVarInt(inFrame: type)
        guard retirePriorTo <= sequence else {
            throw .frameEncoding("Retire Prior To above the sequence number", frameType: type)
        }
        guard let length = buffer.readInteger(as: UInt8.self) else {
            throw .frameEncoding("frame ends early", frameType: type)
        }
        guard (1...ConnectionID.maxLength).contains(Int(length)) else {
            throw .frameEncoding("connection ID length not 1 to 20", frameType: type)
        }
        guard let connectionID = buffer.readConnectionID(length: Int(length)),
            let resetToken = buffer.readStatelessResetToken()
        else { throw .frameEncoding("frame ends early", frameType: type) }
        return NewConnectionIDFrame(
            sequence: sequence, retirePriorTo: retirePriorTo, connectionID: connectionID, resetToken: resetToken)
    }
}

extension ByteBuffer {
    /// Reads a variable-length integer field of a frame of type `type`.
    @inline(__always)
    mutating func readVarInt(inFrame type: UInt64) throws(TransportError) -> UInt64 {
        guard let value = readQUICVarInt() else { throw .frameEncoding("frame ends early", frameType: type) }
        return value
    }

    /// Slices `length` bytes of a frame's data, however large a length the peer sent.
    @inline(__always)
    mutating func readSlice(length: UInt64, inFrame type: UInt64) throws(TransportError) -> ByteBuffer {
        guard length <= UInt64(readableBytes), let slice = readSlice(length: Int(length)) else {
            throw .frameEncoding("frame ends early", frameType: type)
        }
        return slice
    }
}
