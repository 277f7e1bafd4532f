import NIOCore

/// The packet types of QUIC version 1 (RFC 9000 §17).
enum PacketType: Sendable {
    case initial
    case zeroRTT
    case handshake
    case retry
    case oneRTT
}

/// What can be read of a packet before its protection is removed: enough to route it to a connection and to
/// find its packet number and payload inside the datagram.
struct PacketHeader {
    static let version1: UInt32 = 1

    var type: PacketType
    /// Zero for short-header packets, which carry no version.
    var version: UInt32
    var destination: ConnectionID
    var source: ConnectionID
    /// The Initial packet's token (a slice of the datagram), empty when there is none.
    var token: ByteBuffer?
    /// Where the packet number starts, as an index into the datagram.
    var packetNumberOffset: Int
    /// One past the packet's last byte: the end of the datagram for a short header.
    var end: Int

    enum ParseError: Error, Equatable {
        /// Not a packet of any version: drop the rest of the datagram.
        case malformed
        /// A long header of a version this server does not speak: answer with Version Negotiation.
        case unsupportedVersion(UInt32, destination: ConnectionID, source: ConnectionID)
    }

    /// Reads the header of the packet starting at `start`. Short headers carry no length, so the ID length the
    /// server issues is needed to find where their packet number starts.
    static func parse(
        _ datagram: ByteBuffer, at start: Int, shortHeaderIDLength: Int
    ) throws(ParseError) -> PacketHeader {
        var reader = datagram.getSlice(at: start, length: datagram.writerIndex - start) ?? ByteBuffer()
        guard let first = reader.readInteger(as: UInt8.self) else { throw .malformed }
        // Every version-1 packet sets the fixed bit; a cleared bit is garbage (RFC 9000 §17.2).
        if first & 0x80 == 0 {
            guard first & 0x40 != 0, let destination = reader.readConnectionID(length: shortHeaderIDLength) else {
                throw .malformed
            }
            return PacketHeader(
                type: .oneRTT, version: 0, destination: destination, source: .empty, token: nil,
                packetNumberOffset: start + 1 + shortHeaderIDLength, end: datagram.writerIndex)
        }
        guard let version = reader.readInteger(as: UInt32.self),
            let destinationLength = reader.readInteger(as: UInt8.self),
            let destination = reader.readConnectionID(length: Int(destinationLength)),
            let sourceLength = reader.readInteger(as: UInt8.self),
            let source = reader.readConnectionID(length: Int(sourceLength))
        else { throw .malformed }
        guard version == version1 else {
            throw .unsupportedVersion(version, destination: destination, source: source)
        }
        guard first & 0x40 != 0 else { throw .malformed }
        let type: PacketType
        switch (first >> 4) & 0x03 {
        case 0: type = .initial
        case 1: type = .zeroRTT
        case 2: type = .handshake
        default: type = .retry
        }
        guard type != .retry else { throw .malformed }  // only servers send Retry
        var token: ByteBuffer?
        if type == .initial {
            guard let length = reader.readQUICVarInt(), length <= reader.readableBytes,
                let slice = reader.readSlice(length: Int(length))
            else { throw .malformed }
            token = slice
        }
        guard let length = reader.readQUICVarInt(), length <= reader.readableBytes, length >= 20 else {
            throw .malformed
        }
        let packetNumberOffset = start + reader.readerIndex
        return PacketHeader(
            type: type, version: version, destination: destination, source: source, token: token,
            packetNumberOffset: packetNumberOffset, end: packetNumberOffset + Int(length))
    }

    /// The destination connection ID of a datagram's first packet, read without parsing the rest.
    static func destination(of datagram: ByteBuffer, shortHeaderIDLength: Int) -> ConnectionID? {
        var reader = datagram
        guard let first = reader.readInteger(as: UInt8.self) else { return nil }
        if first & 0x80 == 0 { return reader.readConnectionID(length: shortHeaderIDLength) }
        guard reader.readInteger(as: UInt32.self) != nil, let length = reader.readInteger(as: UInt8.self) else {
            return nil
        }
        return reader.readConnectionID(length: Int(length))
    }
}
