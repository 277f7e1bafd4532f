import NIOCore
import Testing

@testable import VelocityQUIC

@Suite struct TransportParametersTests {
    typealias ID = TransportParameters.ID

    static let token = StatelessResetToken(high: 1, low: 2)

    static var server: TransportParameters {
        var parameters = TransportParameters()
        parameters.originalDestinationConnectionID = ConnectionID([1, 2, 3, 4, 5, 6, 7, 8])
        parameters.maxIdleTimeout = 30_000
        parameters.statelessResetToken = token
        parameters.maxUDPPayloadSize = 1472
        parameters.initialMaxData = 1 << 24
        parameters.initialMaxStreamDataBidiLocal = 1 << 20
        parameters.initialMaxStreamDataBidiRemote = 1 << 21
        parameters.initialMaxStreamDataUni = 1 << 19
        parameters.initialMaxStreamsBidi = 100
        parameters.initialMaxStreamsUni = 3
        parameters.ackDelayExponent = 10
        parameters.maxAckDelay = 20
        parameters.disableActiveMigration = true
        parameters.preferredAddress = PreferredAddress(
            ipv4Address: 0xC000_0201, ipv4Port: 443, ipv6Address: Array(0..<16), ipv6Port: 8443,
            connectionID: ConnectionID([9, 9, 9, 9])!, resetToken: StatelessResetToken(high: 3, low: 4))
        parameters.activeConnectionIDLimit = 4
        parameters.initialSourceConnectionID = ConnectionID([0xAA, 0xBB])
        parameters.retrySourceConnectionID = ConnectionID.empty
        parameters.maxDatagramFrameSize = 65535
        return parameters
    }

    static var client: TransportParameters {
        var parameters = server
        parameters.originalDestinationConnectionID = nil
        parameters.statelessResetToken = nil
        parameters.preferredAddress = nil
        parameters.retrySourceConnectionID = nil
        parameters.initialSourceConnectionID = .empty
        return parameters
    }

    static func encoded(_ parameters: TransportParameters) -> ByteBuffer {
        var buffer = ByteBuffer()
        parameters.encode(into: &buffer)
        return buffer
    }

    static func parameter(_ id: UInt64, _ value: [UInt8]) -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeQUICVarInt(id)
        buffer.writeQUICVarInt(UInt64(value.count))
        buffer.writeBytes(value)
        return Array(buffer.readableBytesView)
    }

    static func integer(_ id: UInt64, _ value: UInt64) -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeQUICVarInt(value)
        return parameter(id, Array(buffer.readableBytesView))
    }

    static func decode(_ bytes: [UInt8], fromClient: Bool = true) throws(TransportError) -> TransportParameters {
        try TransportParameters.decode(ByteBuffer(bytes: bytes), fromClient: fromClient)
    }

    static func error(_ bytes: [UInt8], fromClient: Bool = true) -> TransportError? {
        do {
            _ = try decode(bytes, fromClient: fromClient)
            return nil
        } catch {
            return error
        }
    }

    @Test func roundTrips() throws {
        #expect(try TransportParameters.decode(Self.encoded(Self.server), fromClient: false) == Self.server)
        #expect(try TransportParameters.decode(Self.encoded(Self.client), fromClient: true) == Self.client)
    }

    @Test func defaultsAreNotWrittenAndAbsentMeansDefault() throws {
        #expect(Self.encoded(TransportParameters()).readableBytes == 0)
        let parameters = try Self.decode([])
        #expect(parameters == TransportParameters())
        #expect(parameters.maxUDPPayloadSize == 65527)
        #expect(parameters.ackDelayExponent == 3)
        #expect(parameters.maxAckDelayDuration == .milliseconds(25))
        #expect(parameters.activeConnectionIDLimit == 2)
        #expect(parameters.idleTimeout == nil)
        #expect(!parameters.supportsDatagrams)
        #expect(parameters.initialSourceConnectionID == nil)
        // Sent explicitly, a default reads the same as left out.
        let explicit = Self.integer(ID.maxUDPPayloadSize, 65527) + Self.integer(ID.ackDelayExponent, 3)
        #expect(try Self.decode(explicit) == TransportParameters())
        // A zero-length connection ID is present, not absent.
        #expect(try Self.decode(Self.parameter(ID.initialSourceConnectionID, [])).initialSourceConnectionID == .empty)
    }

    @Test func valuesAreShortestIntegers() {
        var parameters = TransportParameters()
        parameters.initialMaxData = 1 << 20
        #expect(Array(Self.encoded(parameters).readableBytesView) == [0x04, 0x04, 0x80, 0x10, 0x00, 0x00])
    }

    @Test func unknownAndGreaseParametersAreIgnored() throws {
        let bytes =
            Self.parameter(31 * 5 + 27, [1, 2, 3]) + Self.integer(ID.initialMaxData, 1000)
            + Self.parameter(31 * 1_000_000 + 27, []) + Self.parameter(0x3FFF, Array(repeating: 0xFF, count: 300))
        let parameters = try Self.decode(bytes)
        var expected = TransportParameters()
        expected.initialMaxData = 1000
        #expect(parameters == expected)
    }

    @Test func invalidValuesAreRefused() {
        let cases: [([UInt8], Comment)] = [
            (Self.integer(ID.maxUDPPayloadSize, 1199), "max_udp_payload_size below 1200"),
            (Self.integer(ID.ackDelayExponent, 21), "ack_delay_exponent above 20"),
            (Self.integer(ID.maxAckDelay, 1 << 14), "max_ack_delay of 2^14"),
            (Self.integer(ID.activeConnectionIDLimit, 1), "active_connection_id_limit 1"),
            (Self.integer(ID.activeConnectionIDLimit, 0), "active_connection_id_limit 0"),
            (Self.integer(ID.initialMaxStreamsBidi, (1 << 60) + 1), "initial_max_streams_bidi above 2^60"),
            (Self.integer(ID.initialMaxStreamsUni, (1 << 60) + 1), "initial_max_streams_uni above 2^60"),
            (Self.parameter(ID.initialSourceConnectionID, Array(repeating: 1, count: 21)), "21-byte connection ID"),
            (Self.parameter(ID.initialMaxData, [0x05, 0x00]), "integer with a byte left over"),
            (Self.parameter(ID.initialMaxData, [0x80, 0x00]), "integer longer than its parameter"),
            (Self.parameter(ID.initialMaxData, []), "empty integer"),
            (Self.parameter(ID.disableActiveMigration, [0]), "disable_active_migration with a value"),
            (Self.integer(ID.initialMaxData, 1) + Self.integer(ID.initialMaxData, 1), "duplicate parameter"),
            (
                Self.parameter(ID.disableActiveMigration, []) + Self.parameter(ID.disableActiveMigration, []),
                "duplicate"
            ),
            (Self.parameter(31 * 2 + 27, []) + Self.parameter(31 * 2 + 27, []), "duplicate unknown parameter"),
            ([0x04, 0x05, 0x01], "value beyond the end"),
            ([0x04], "length missing"),
        ]
        for (bytes, comment) in cases {
            #expect(Self.error(bytes)?.code == TransportError.transportParameterError, comment)
        }
        // The limits themselves are fine.
        let limits =
            Self.integer(ID.maxUDPPayloadSize, 1200) + Self.integer(ID.ackDelayExponent, 20)
            + Self.integer(ID.maxAckDelay, (1 << 14) - 1) + Self.integer(ID.activeConnectionIDLimit, 2)
            + Self.integer(ID.initialMaxStreamsBidi, 1 << 60)
            + Self.parameter(ID.initialSourceConnectionID, Array(repeating: 1, count: 20))
        #expect(Self.error(limits) == nil)
    }

    @Test func serverOnlyParametersAreRefusedFromClients() {
        var preferred = ByteBuffer()
        TransportParameters(preferredAddress: Self.server.preferredAddress).encode(into: &preferred)
        let serverOnly: [[UInt8]] = [
            Self.parameter(ID.originalDestinationConnectionID, [1, 2, 3, 4]),
            Self.parameter(ID.statelessResetToken, Array(repeating: 7, count: 16)),
            Self.parameter(ID.retrySourceConnectionID, [5, 6]),
            Array(preferred.readableBytesView),
        ]
        for bytes in serverOnly {
            #expect(Self.error(bytes, fromClient: true)?.code == TransportError.transportParameterError, "\(bytes)")
            #expect(Self.error(bytes, fromClient: false) == nil, "\(bytes)")
        }
    }

    @Test func serverParameterShapesAreChecked() {
        let cases: [([UInt8], Comment)] = [
            (Self.parameter(ID.statelessResetToken, Array(repeating: 7, count: 15)), "15-byte reset token"),
            (Self.parameter(ID.statelessResetToken, Array(repeating: 7, count: 17)), "17-byte reset token"),
            (Self.parameter(ID.originalDestinationConnectionID, Array(repeating: 1, count: 21)), "21-byte ID"),
            (
                Self.parameter(
                    ID.preferredAddress, Array(repeating: 0, count: 24) + [0] + Array(repeating: 0, count: 16)),
                "preferred_address with a zero-length connection ID"
            ),
            (Self.parameter(ID.preferredAddress, Array(repeating: 0, count: 24) + [4, 1, 2, 3, 4]), "cut short"),
        ]
        for (bytes, comment) in cases {
            #expect(Self.error(bytes, fromClient: false)?.code == TransportError.transportParameterError, comment)
        }
    }
}
