import NIOCore

/// The transport parameters one endpoint declares in its TLS handshake (RFC 9000 §18, RFC 9221 §3). Integer
/// parameters hold their effective value: the RFC gives each a default that an absent parameter means, so
/// absent and default are the same thing and need no optional. Only values that can be missing — connection
/// IDs, the reset token, the preferred address — are optional.
struct TransportParameters: Equatable, Sendable {
    /// Only from a server: the Destination Connection ID of the client's first Initial.
    var originalDestinationConnectionID: ConnectionID?
    /// Milliseconds; 0 means this endpoint sets no idle timeout.
    var maxIdleTimeout: UInt64 = 0
    /// Only from a server: the token for the connection ID of the handshake.
    var statelessResetToken: StatelessResetToken?
    var maxUDPPayloadSize: UInt64 = 65527
    var initialMaxData: UInt64 = 0
    /// For streams the sender of these parameters opens.
    var initialMaxStreamDataBidiLocal: UInt64 = 0
    /// For bidirectional streams the receiver of these parameters opens.
    var initialMaxStreamDataBidiRemote: UInt64 = 0
    var initialMaxStreamDataUni: UInt64 = 0
    var initialMaxStreamsBidi: UInt64 = 0
    var initialMaxStreamsUni: UInt64 = 0
    var ackDelayExponent: UInt64 = 3
    /// Milliseconds.
    var maxAckDelay: UInt64 = 25
    var disableActiveMigration = false
    /// Only from a server; this server never sends one.
    var preferredAddress: PreferredAddress?
    var activeConnectionIDLimit: UInt64 = 2
    var initialSourceConnectionID: ConnectionID?
    /// Only from a server, and only after a Retry.
    var retrySourceConnectionID: ConnectionID?
    /// The largest DATAGRAM frame the endpoint accepts; 0 means it takes none (RFC 9221).
    var maxDatagramFrameSize: UInt64 = 0

    /// The peer's idle timeout, nil when it set none.
    var idleTimeout: Duration? { maxIdleTimeout == 0 ? nil : .milliseconds(maxIdleTimeout) }

    var maxAckDelayDuration: Duration { .milliseconds(maxAckDelay) }

    var supportsDatagrams: Bool { maxDatagramFrameSize > 0 }
}

/// A server's preferred_address (RFC 9000 §18.2). All-zero address and port mean that family is not offered.
struct PreferredAddress: Equatable, Sendable {
    /// The four address bytes read big-endian.
    var ipv4Address: UInt32
    var ipv4Port: UInt16
    /// 16 bytes.
    var ipv6Address: [UInt8]
    var ipv6Port: UInt16
    var connectionID: ConnectionID
    var resetToken: StatelessResetToken
}

extension TransportParameters {
    /// Parameter IDs.
    enum ID {
        static let originalDestinationConnectionID: UInt64 = 0x00
        static let maxIdleTimeout: UInt64 = 0x01
        static let statelessResetToken: UInt64 = 0x02
        static let maxUDPPayloadSize: UInt64 = 0x03
        static let initialMaxData: UInt64 = 0x04
        static let initialMaxStreamDataBidiLocal: UInt64 = 0x05
        static let initialMaxStreamDataBidiRemote: UInt64 = 0x06
        static let initialMaxStreamDataUni: UInt64 = 0x07
        static let initialMaxStreamsBidi: UInt64 = 0x08
        static let initialMaxStreamsUni: UInt64 = 0x09
        static let ackDelayExponent: UInt64 = 0x0A
        static let maxAckDelay: UInt64 = 0x0B
        static let disableActiveMigration: UInt64 = 0x0C
        static let preferredAddress: UInt64 = 0x0D
        static let activeConnectionIDLimit: UInt64 = 0x0E
        static let initialSourceConnectionID: UInt64 = 0x0F
        static let retrySourceConnectionID: UInt64 = 0x10
        static let maxDatagramFrameSize: UInt64 = 0x20
    }

    /// Writes every parameter that is present and differs from its default, in ID order.
    func encode(into buffer: inout ByteBuffer) {
        let defaults = TransportParameters()
        if let id = originalDestinationConnectionID {
            Self.write(ID.originalDestinationConnectionID, id, into: &buffer)
        }
        Self.write(ID.maxIdleTimeout, maxIdleTimeout, default: defaults.maxIdleTimeout, into: &buffer)
        if let token = statelessResetToken {
            buffer.writeQUICVarInt(ID.statelessResetToken)
            buffer.writeQUICVarInt(UInt64(StatelessResetToken.size))
            buffer.writeStatelessResetToken(token)
        }
        Self.write(ID.maxUDPPayloadSize, maxUDPPayloadSize, default: defaults.maxUDPPayloadSize, into: &buffer)
        Self.write(ID.initialMaxData, initialMaxData, default: 0, into: &buffer)
        Self.write(ID.initialMaxStreamDataBidiLocal, initialMaxStreamDataBidiLocal, default: 0, into: &buffer)
        Self.write(ID.initialMaxStreamDataBidiRemote, initialMaxStreamDataBidiRemote, default: 0, into: &buffer)
        Self.write(ID.initialMaxStreamDataUni, initialMaxStreamDataUni, default: 0, into: &buffer)
        Self.write(ID.initialMaxStreamsBidi, initialMaxStreamsBidi, default: 0, into: &buffer)
        Self.write(ID.initialMaxStreamsUni, initialMaxStreamsUni, default: 0, into: &buffer)
        Self.write(ID.ackDelayExponent, ackDelayExponent, default: defaults.ackDelayExponent, into: &buffer)
        Self.write(ID.maxAckDelay, maxAckDelay, default: defaults.maxAckDelay, into: &buffer)
        if disableActiveMigration {
            buffer.writeQUICVarInt(ID.disableActiveMigration)
            buffer.writeQUICVarInt(0)
        }
        if let address = preferredAddress {
            buffer.writeQUICVarInt(ID.preferredAddress)
            buffer.writeQUICVarInt(UInt64(4 + 2 + 16 + 2 + 1 + address.connectionID.count + StatelessResetToken.size))
            buffer.writeInteger(address.ipv4Address)
            buffer.writeInteger(address.ipv4Port)
            buffer.writeBytes(address.ipv6Address)
            buffer.writeInteger(address.ipv6Port)
            buffer.writeInteger(UInt8(address.connectionID.count))
            buffer.writeConnectionID(address.connectionID)
            buffer.writeStatelessResetToken(address.resetToken)
        }
        Self.write(
            ID.activeConnectionIDLimit, activeConnectionIDLimit, default: defaults.activeConnectionIDLimit,
            into: &buffer)
        if let id = initialSourceConnectionID { Self.write(ID.initialSourceConnectionID, id, into: &buffer) }
        if let id = retrySourceConnectionID { Self.write(ID.retrySourceConnectionID, id, into: &buffer) }
        Self.write(ID.maxDatagramFrameSize, maxDatagramFrameSize, default: 0, into: &buffer)
    }

    private static func write(_ id: UInt64, _ value: UInt64, default: UInt64, into buffer: inout ByteBuffer) {
        guard value != `default` else { return }
        buffer.writeQUICVarInt(id)
        buffer.writeQUICVarInt(UInt64(VarInt.size(value)))
        buffer.writeQUICVarInt(value)
    }

    private static func write(_ id: UInt64, _ connectionID: ConnectionID, into buffer: inout ByteBuffer) {
        buffer.writeQUICVarInt(id)
        buffer.writeQUICVarInt(UInt64(connectionID.count))
        buffer.writeConnectionID(connectionID)
    }

    /// Reads the peer's parameters, refusing with TRANSPORT_PARAMETER_ERROR what RFC 9000 §7.4 and §18.2
    /// forbid: malformed or out-of-range values, a parameter sent twice, and server-only parameters from a
    /// client. Unknown parameters, GREASE (31 × N + 27) among them, are skipped. Whether the connection IDs
    /// are present and match the packets (§7.3) is for the connection to check.
    static func decode(_ buffer: ByteBuffer, fromClient: Bool) throws(TransportError) -> TransportParameters {
        var buffer = buffer
        var parameters = TransportParameters()
        var seen: UInt32 = 0
        var seenUnknown: Set<UInt64> = []
        while buffer.readableBytes > 0 {
            guard let id = buffer.readQUICVarInt(), let length = buffer.readQUICVarInt(),
                length <= UInt64(buffer.readableBytes), var value = buffer.readSlice(length: Int(length))
            else { throw .transportParameter("transport parameters end early") }

            let bit: UInt32
            switch id {
            case 0x00...0x10: bit = 1 << UInt32(id)
            case ID.maxDatagramFrameSize: bit = 1 << 17
            default:
                guard seenUnknown.insert(id).inserted else {
                    throw .transportParameter("duplicate transport parameter")
                }
                continue
            }
            guard seen & bit == 0 else { throw .transportParameter("duplicate transport parameter") }
            seen |= bit

            switch id {
            case ID.originalDestinationConnectionID:
                guard !fromClient else { throw .transportParameter("original_destination_connection_id from client") }
                parameters.originalDestinationConnectionID = try connectionID(value)
            case ID.maxIdleTimeout:
                parameters.maxIdleTimeout = try integer(&value)
            case ID.statelessResetToken:
                guard !fromClient else { throw .transportParameter("stateless_reset_token from client") }
                let token = value.readableBytes == StatelessResetToken.size ? value.readStatelessResetToken() : nil
                guard let token else { throw .transportParameter("stateless_reset_token not 16 bytes") }
                parameters.statelessResetToken = token
            case ID.maxUDPPayloadSize:
                parameters.maxUDPPayloadSize = try integer(&value)
                guard parameters.maxUDPPayloadSize >= 1200 else {
                    throw .transportParameter("max_udp_payload_size below 1200")
                }
            case ID.initialMaxData:
                parameters.initialMaxData = try integer(&value)
            case ID.initialMaxStreamDataBidiLocal:
                parameters.initialMaxStreamDataBidiLocal = try integer(&value)
            case ID.initialMaxStreamDataBidiRemote:
                parameters.initialMaxStreamDataBidiRemote = try integer(&value)
            case ID.initialMaxStreamDataUni:
                parameters.initialMaxStreamDataUni = try integer(&value)
            case ID.initialMaxStreamsBidi:
                parameters.initialMaxStreamsBidi = try integer(&value)
                guard parameters.initialMaxStreamsBidi <= Frame.maxStreamCount else {
                    throw .transportParameter("initial_max_streams_bidi above 2^60")
                }
            case ID.initialMaxStreamsUni:
                parameters.initialMaxStreamsUni = try integer(&value)
                guard parameters.initialMaxStreamsUni <= Frame.maxStreamCount else {
                    throw .transportParameter("initial_max_streams_uni above 2^60")
                }
            case ID.ackDelayExponent:
                parameters.ackDelayExponent = try integer(&value)
                guard parameters.ackDelayExponent <= 20 else {
                    throw .transportParameter("ack_delay_exponent above 20")
                }
            case ID.maxAckDelay:
                parameters.maxAckDelay = try integer(&value)
                guard parameters.maxAckDelay < 1 << 14 else {
                    throw .transportParameter("max_ack_delay of 2^14 or more")
                }
            case ID.disableActiveMigration:
                guard value.readableBytes == 0 else { throw .transportParameter("disable_active_migration not empty") }
                parameters.disableActiveMigration = true
            case ID.preferredAddress:
                guard !fromClient else { throw .transportParameter("preferred_address from client") }
                parameters.preferredAddress = try preferredAddress(&value)
            case ID.activeConnectionIDLimit:
                parameters.activeConnectionIDLimit = try integer(&value)
                guard parameters.activeConnectionIDLimit >= 2 else {
                    throw .transportParameter("active_connection_id_limit below 2")
                }
            case ID.initialSourceConnectionID:
                parameters.initialSourceConnectionID = try connectionID(value)
            case ID.retrySourceConnectionID:
                guard !fromClient else { throw .transportParameter("retry_source_connection_id from client") }
                parameters.retrySourceConnectionID = try connectionID(value)
            default:
                parameters.maxDatagramFrameSize = try integer(&value)
            }
        }
        return parameters
    }

    /// An integer parameter is one variable-length integer filling the whole value.
    private static func integer(_ value: inout ByteBuffer) throws(TransportError) -> UInt64 {
        guard let integer = value.readQUICVarInt(), value.readableBytes == 0 else {
            throw .transportParameter("malformed integer transport parameter")
        }
        return integer
    }

    private static func connectionID(_ value: ByteBuffer) throws(TransportError) -> ConnectionID {
        var value = value
        guard let id = value.readConnectionID(length: value.readableBytes) else {
            throw .transportParameter("connection ID over 20 bytes")
        }
        return id
    }

    private static func preferredAddress(_ value: inout ByteBuffer) throws(TransportError) -> PreferredAddress {
        guard let ipv4Address = value.readInteger(as: UInt32.self),
            let ipv4Port = value.readInteger(as: UInt16.self),
            let ipv6Address = value.readBytes(length: 16),
            let ipv6Port = value.readInteger(as: UInt16.self),
            let length = value.readInteger(as: UInt8.self)
        else { throw .transportParameter("preferred_address ends early") }
        guard (1...ConnectionID.maxLength).contains(Int(length)) else {
            throw .transportParameter("preferred_address connection ID not 1 to 20 bytes")
        }
        guard let connectionID = value.readConnectionID(length: Int(length)),
            let resetToken = value.readStatelessResetToken(), value.readableBytes == 0
        else { throw .transportParameter("malformed preferred_address") }
        return PreferredAddress(
            ipv4Address: ipv4Address, ipv4Port: ipv4Port, ipv6Address: ipv6Address, ipv6Port: ipv6Port,
            connectionID: connectionID, resetToken: resetToken)
    }
}
