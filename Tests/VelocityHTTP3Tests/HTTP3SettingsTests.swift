import NIOCore
import Testing
import VelocityQUIC

@testable import VelocityHTTP3

@Suite struct HTTP3SettingsTests {
    static func payload(_ pairs: [(UInt64, UInt64)]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for (identifier, value) in pairs {
            buffer.writeQUICVarInt(identifier)
            buffer.writeQUICVarInt(value)
        }
        return buffer
    }

    static func pairs(_ payload: ByteBuffer) -> [(identifier: UInt64, value: UInt64)] {
        var payload = payload
        var pairs: [(UInt64, UInt64)] = []
        while let identifier = payload.readQUICVarInt(), let value = payload.readQUICVarInt() {
            pairs.append((identifier, value))
        }
        #expect(payload.readableBytes == 0)
        return pairs
    }

    static func isReserved(_ identifier: UInt64) -> Bool {
        identifier >= 0x21 && (identifier - 0x21) % 0x1F == 0
    }

    static let examples: [HTTP3Settings] = [
        HTTP3Settings(),
        HTTP3Settings(qpackMaxTableCapacity: 4096, qpackBlockedStreams: 16),
        HTTP3Settings(maxFieldSectionSize: 0),
        HTTP3Settings(maxFieldSectionSize: VarInt.max, enableConnectProtocol: true),
        HTTP3Settings(h3Datagram: true),
        HTTP3Settings(
            qpackMaxTableCapacity: VarInt.max, maxFieldSectionSize: 65536, qpackBlockedStreams: VarInt.max,
            enableConnectProtocol: true, h3Datagram: true),
    ]

    @Test(arguments: examples)
    func roundTrips(settings: HTTP3Settings) throws {
        var payload = ByteBuffer()
        settings.write(into: &payload)
        #expect(try HTTP3Settings.parse(payload) == settings)

        var frame = ByteBuffer()
        let written = frame.writeHTTP3Settings(settings)
        #expect(written == frame.readableBytes)
        var reader = HTTP3FrameReader()
        reader.append(frame)
        #expect(try reader.next() == .settings(settings))
        #expect(reader.isAtFrameBoundary)
    }

    @Test func onlyNonDefaultValuesAndOneReservedIdentifierAreWritten() {
        var payload = ByteBuffer()
        HTTP3Settings().write(into: &payload)
        let defaults = Self.pairs(payload)
        #expect(defaults.count == 1)
        #expect(defaults.allSatisfy { Self.isReserved($0.identifier) })

        payload.clear()
        HTTP3Settings(maxFieldSectionSize: 0, h3Datagram: true).write(into: &payload)
        let written = Self.pairs(payload).filter { !Self.isReserved($0.identifier) }
        #expect(written.map(\.identifier) == [0x06, 0x33])
        #expect(written.map(\.value) == [0, 1])
        #expect(Self.pairs(payload).count == 3)
    }

    @Test func h3DatagramIsAbsentWhenFalse() {
        var payload = ByteBuffer()
        HTTP3Settings(qpackMaxTableCapacity: 1, enableConnectProtocol: true).write(into: &payload)
        let identifiers = Self.pairs(payload).map(\.identifier)
        #expect(!identifiers.contains(0x33))
        #expect(identifiers.contains(0x08))
    }

    @Test func unknownAndReservedIdentifiersAreIgnored() throws {
        let payload = Self.payload([
            (0x21, 7), (0x1F * 12345 + 0x21, VarInt.max), (0x00, 1), (0x09, 3), (0x10, 0), (0x2B60, 5),
            (0x07, 100), (0x1F * ((VarInt.max - 0x21) / 0x1F) + 0x21, 0),
        ])
        #expect(try HTTP3Settings.parse(payload) == HTTP3Settings(qpackBlockedStreams: 100))
        #expect(try HTTP3Settings.parse(ByteBuffer()) == HTTP3Settings())
    }

    @Test(arguments: [0x01, 0x06, 0x07, 0x08, 0x33, 0x21] as [UInt64])
    func aRepeatedIdentifierIsASettingsError(identifier: UInt64) {
        let payload = Self.payload([(identifier, 1), (0x40, 0), (identifier, 1)])
        let error = #expect(throws: HTTP3Error.self) { try HTTP3Settings.parse(payload) }
        #expect(error?.code == .settingsError)
    }

    @Test(arguments: [0x02, 0x03, 0x04, 0x05] as [UInt64])
    func http2IdentifiersAreASettingsError(identifier: UInt64) {
        let error = #expect(throws: HTTP3Error.self) { try HTTP3Settings.parse(Self.payload([(identifier, 0)])) }
        #expect(error?.code == .settingsError)
    }

    @Test(arguments: [0x08, 0x33] as [UInt64])
    func flagsAreZeroOrOne(identifier: UInt64) throws {
        #expect(try HTTP3Settings.parse(Self.payload([(identifier, 0)])) == HTTP3Settings())
        let on = try HTTP3Settings.parse(Self.payload([(identifier, 1)]))
        #expect(identifier == 0x08 ? on.enableConnectProtocol : on.h3Datagram)
        for value: UInt64 in [2, 64, VarInt.max] {
            let error = #expect(throws: HTTP3Error.self) {
                try HTTP3Settings.parse(Self.payload([(identifier, value)]))
            }
            #expect(error?.code == .settingsError)
        }
    }

    @Test func everyCutInsideAPairIsAFrameError() throws {
        let payload = Self.payload([(0x01, 4096), (0x1F * 99 + 0x21, 1 << 40), (0x06, 16384)])
        var boundaries: Set<Int> = [0]
        var cursor = payload
        while cursor.readQUICVarInt() != nil, cursor.readQUICVarInt() != nil {
            boundaries.insert(cursor.readerIndex)
        }
        for cut in 0..<payload.readableBytes where !boundaries.contains(cut) {
            let error = #expect(throws: HTTP3Error.self, "cut at \(cut)") {
                try HTTP3Settings.parse(payload.getSlice(at: 0, length: cut)!)
            }
            #expect(error?.code == .frameError)
        }
    }
}
