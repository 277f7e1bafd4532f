import NIOCore
import VelocityTLS

/// Header and payload protection applied in place inside a datagram buffer (RFC 9001 §5), so that opening or
/// sealing a packet copies nothing. Indices are relative to the buffer's reader index, which is 0 for every
/// datagram the endpoint handles.
enum PacketProtection {
    /// A packet's header with its protection removed.
    struct UnprotectedHeader {
        var firstByte: UInt8
        var truncatedNumber: UInt64
        var numberLength: Int
    }

    /// Unmasks the first byte and the packet number of `header`'s packet.
    static func removeHeaderProtection(
        _ datagram: inout ByteBuffer, header: PacketHeader, start: Int, key: QUICPacketKey
    ) -> UnprotectedHeader? {
        let sampleStart = header.packetNumberOffset + 4
        guard sampleStart + QUICPacketKey.sampleLength <= header.end else { return nil }
        return datagram.withUnsafeMutableReadableBytes { bytes in
            let mask = key.headerMask(sample: UnsafeRawBufferPointer(rebasing: bytes[sampleStart..<(sampleStart + 16)]))
            let isLong = bytes[start] & 0x80 != 0
            bytes[start] ^= mask.0 & (isLong ? 0x0F : 0x1F)
            let first = bytes[start]
            let length = Int(first & 0x03) + 1
            var truncated: UInt64 = 0
            withUnsafeBytes(of: mask) { mask in
                for index in 0..<length {
                    bytes[header.packetNumberOffset + index] ^= mask[1 + index]
                    truncated = truncated << 8 | UInt64(bytes[header.packetNumberOffset + index])
                }
            }
            return UnprotectedHeader(firstByte: first, truncatedNumber: truncated, numberLength: length)
        }
    }

    /// Decrypts the payload in place; returns it as a slice of the datagram, or nil if it does not authenticate.
    static func open(
        _ datagram: inout ByteBuffer, start: Int, payloadStart: Int, end: Int, number: UInt64, key: QUICPacketKey
    ) -> ByteBuffer? {
        let length = datagram.withUnsafeMutableReadableBytes { bytes in
            key.open(
                packetNumber: number, header: UnsafeRawBufferPointer(rebasing: bytes[start..<payloadStart]),
                ciphertext: UnsafeMutableRawBufferPointer(rebasing: bytes[payloadStart..<end]))
        }
        return length.flatMap { datagram.getSlice(at: payloadStart, length: $0) }
    }

    /// Encrypts a packet written into `datagram` from `start`, whose payload runs from `payloadStart` to the
    /// writer index, appends its tag, and masks its header.
    static func seal(
        _ datagram: inout ByteBuffer, start: Int, numberOffset: Int, numberLength: Int, number: UInt64,
        key: QUICPacketKey
    ) {
        let payloadStart = numberOffset + numberLength
        let payloadEnd = datagram.writerIndex
        datagram.writeRepeatingByte(0, count: QUICPacketKey.tagLength)
        datagram.withUnsafeMutableReadableBytes { bytes in
            key.seal(
                packetNumber: number, header: UnsafeRawBufferPointer(rebasing: bytes[start..<payloadStart]),
                payload: UnsafeMutableRawBufferPointer(rebasing: bytes[payloadStart..<payloadEnd]),
                tag: UnsafeMutableRawBufferPointer(rebasing: bytes[payloadEnd..<(payloadEnd + QUICPacketKey.tagLength)])
            )
            let sampleStart = numberOffset + 4
            let mask = key.headerMask(sample: UnsafeRawBufferPointer(rebasing: bytes[sampleStart..<(sampleStart + 16)]))
            bytes[start] ^= mask.0 & (bytes[start] & 0x80 != 0 ? 0x0F : 0x1F)
            withUnsafeBytes(of: mask) { mask in
                for index in 0..<numberLength { bytes[numberOffset + index] ^= mask[1 + index] }
            }
        }
    }
}
