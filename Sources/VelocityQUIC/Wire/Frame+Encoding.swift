import NIOCore

extension Frame {
    /// Writes the frame with the shortest encoding of every integer. STREAM and DATAGRAM frames always carry
    /// a length, so that any frame can follow them.
    func encode(into buffer: inout ByteBuffer) {
        switch self {
        case .padding(let count):
            buffer.writeRepeatingByte(0, count: count)
        case .ping, .handshakeDone:
            buffer.writeInteger(UInt8(type))
        case .ack(let ack):
            ack.encode(into: &buffer)
        case .resetStream(let id, let errorCode, let finalSize):
            buffer.writeInteger(UInt8(FrameType.resetStream))
            buffer.writeQUICVarInt(id)
            buffer.writeQUICVarInt(errorCode)
            buffer.writeQUICVarInt(finalSize)
        case .stopSending(let id, let errorCode):
            buffer.writeInteger(UInt8(FrameType.stopSending))
            buffer.writeQUICVarInt(id)
            buffer.writeQUICVarInt(errorCode)
        case .crypto(let offset, let data):
            Self.encodeCryptoHeader(offset: offset, length: data.readableBytes, into: &buffer)
            buffer.writeImmutableBuffer(data)
        case .newToken(let token):
            buffer.writeInteger(UInt8(FrameType.newToken))
            buffer.writeQUICVarInt(UInt64(token.readableBytes))
            buffer.writeImmutableBuffer(token)
        case .stream(let frame):
            StreamFrame.encodeHeader(
                id: frame.id, offset: frame.offset, length: frame.data.readableBytes, fin: frame.fin, into: &buffer)
            buffer.writeImmutableBuffer(frame.data)
        case .maxData(let value), .dataBlocked(let value), .retireConnectionID(let value):
            buffer.writeInteger(UInt8(type))
            buffer.writeQUICVarInt(value)
        case .maxStreams(_, let value), .streamsBlocked(_, let value):
            buffer.writeInteger(UInt8(type))
            buffer.writeQUICVarInt(value)
        case .maxStreamData(let id, let value), .streamDataBlocked(let id, let value):
            buffer.writeInteger(UInt8(type))
            buffer.writeQUICVarInt(id)
            buffer.writeQUICVarInt(value)
        case .newConnectionID(let frame):
            buffer.writeInteger(UInt8(FrameType.newConnectionID))
            buffer.writeQUICVarInt(frame.sequence)
            buffer.writeQUICVarInt(frame.retirePriorTo)
            buffer.writeInteger(UInt8(frame.connectionID.count))
            buffer.writeConnectionID(frame.connectionID)
            buffer.writeStatelessResetToken(frame.resetToken)
        case .pathChallenge(let data), .pathResponse(let data):
            buffer.writeInteger(UInt8(type))
            buffer.writeInteger(data)
        case .connectionClose(let close):
            buffer.writeInteger(UInt8(type))
            buffer.writeQUICVarInt(close.errorCode)
            if !close.isApplication { buffer.writeQUICVarInt(close.frameType) }
            buffer.writeQUICVarInt(UInt64(close.reason.readableBytes))
            buffer.writeImmutableBuffer(close.reason)
        case .datagram(let data):
            Self.encodeDatagramHeader(length: data.readableBytes, into: &buffer)
            buffer.writeImmutableBuffer(data)
        }
    }

    /// How many bytes ``encode(into:)`` writes.
    var encodedSize: Int {
        switch self {
        case .padding(let count):
            count
        case .ping, .handshakeDone:
            1
        case .ack(let ack):
            ack.encodedSize
        case .resetStream(let id, let errorCode, let finalSize):
            1 + VarInt.size(id) + VarInt.size(errorCode) + VarInt.size(finalSize)
        case .stopSending(let id, let errorCode):
            1 + VarInt.size(id) + VarInt.size(errorCode)
        case .crypto(let offset, let data):
            Self.cryptoHeaderSize(offset: offset, length: data.readableBytes) + data.readableBytes
        case .newToken(let token):
            1 + VarInt.size(UInt64(token.readableBytes)) + token.readableBytes
        case .stream(let frame):
            StreamFrame.headerSize(id: frame.id, offset: frame.offset, length: frame.data.readableBytes)
                + frame.data.readableBytes
        case .maxData(let value), .dataBlocked(let value), .retireConnectionID(let value),
            .maxStreams(_, let value), .streamsBlocked(_, let value):
            1 + VarInt.size(value)
        case .maxStreamData(let id, let value), .streamDataBlocked(let id, let value):
            1 + VarInt.size(id) + VarInt.size(value)
        case .newConnectionID(let frame):
            1 + VarInt.size(frame.sequence) + VarInt.size(frame.retirePriorTo) + 1 + frame.connectionID.count
                + StatelessResetToken.size
        case .pathChallenge, .pathResponse:
            9
        case .connectionClose(let close):
            1 + VarInt.size(close.errorCode) + (close.isApplication ? 0 : VarInt.size(close.frameType))
                + VarInt.size(UInt64(close.reason.readableBytes)) + close.reason.readableBytes
        case .datagram(let data):
            Self.datagramHeaderSize(length: data.readableBytes) + data.readableBytes
        }
    }

    /// The bytes a CRYPTO frame takes before its data, for fitting data into what is left of a packet.
    @inline(__always)
    static func cryptoHeaderSize(offset: UInt64, length: Int) -> Int {
        1 + VarInt.size(offset) + VarInt.size(UInt64(length))
    }

    /// Writes a CRYPTO frame up to its data, which the caller writes next.
    @inline(__always)
    static func encodeCryptoHeader(offset: UInt64, length: Int, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(FrameType.crypto))
        buffer.writeQUICVarInt(offset)
        buffer.writeQUICVarInt(UInt64(length))
    }

    @inline(__always)
    static func datagramHeaderSize(length: Int) -> Int {
        1 + VarInt.size(UInt64(length))
    }

    /// Writes a DATAGRAM frame with a length up to its data, which the caller writes next.
    @inline(__always)
    static func encodeDatagramHeader(length: Int, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(FrameType.datagramWithLength))
        buffer.writeQUICVarInt(UInt64(length))
    }
}

extension StreamFrame {
    /// The type byte ``encodeHeader(id:offset:length:fin:into:)`` writes: always LEN, OFF only when needed.
    @inline(__always)
    static func type(offset: UInt64, fin: Bool) -> UInt8 {
        UInt8(FrameType.stream) | lengthBit | (offset > 0 ? offsetBit : 0) | (fin ? finBit : 0)
    }

    /// The bytes a STREAM frame takes before its data, for fitting data into what is left of a packet.
    @inline(__always)
    static func headerSize(id: UInt64, offset: UInt64, length: Int) -> Int {
        1 + VarInt.size(id) + (offset > 0 ? VarInt.size(offset) : 0) + VarInt.size(UInt64(length))
    }

    /// Writes a STREAM frame up to its data, which the caller writes next.
    @inline(__always)
    static func encodeHeader(id: UInt64, offset: UInt64, length: Int, fin: Bool, into buffer: inout ByteBuffer) {
        buffer.writeInteger(type(offset: offset, fin: fin))
        buffer.writeQUICVarInt(id)
        if offset > 0 { buffer.writeQUICVarInt(offset) }
        buffer.writeQUICVarInt(UInt64(length))
    }
}
