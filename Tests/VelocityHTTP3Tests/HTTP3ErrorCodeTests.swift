import Testing

@testable import VelocityHTTP3

@Suite struct HTTP3ErrorCodeTests {
    /// RFC 9114 §8.1.
    static let codes: [(code: HTTP3ErrorCode, value: UInt64, name: String)] = [
        (.noError, 0x100, "H3_NO_ERROR"),
        (.generalProtocolError, 0x101, "H3_GENERAL_PROTOCOL_ERROR"),
        (.internalError, 0x102, "H3_INTERNAL_ERROR"),
        (.streamCreationError, 0x103, "H3_STREAM_CREATION_ERROR"),
        (.closedCriticalStream, 0x104, "H3_CLOSED_CRITICAL_STREAM"),
        (.frameUnexpected, 0x105, "H3_FRAME_UNEXPECTED"),
        (.frameError, 0x106, "H3_FRAME_ERROR"),
        (.excessiveLoad, 0x107, "H3_EXCESSIVE_LOAD"),
        (.idError, 0x108, "H3_ID_ERROR"),
        (.settingsError, 0x109, "H3_SETTINGS_ERROR"),
        (.missingSettings, 0x10A, "H3_MISSING_SETTINGS"),
        (.requestRejected, 0x10B, "H3_REQUEST_REJECTED"),
        (.requestCancelled, 0x10C, "H3_REQUEST_CANCELLED"),
        (.requestIncomplete, 0x10D, "H3_REQUEST_INCOMPLETE"),
        (.messageError, 0x10E, "H3_MESSAGE_ERROR"),
        (.connectError, 0x10F, "H3_CONNECT_ERROR"),
        (.versionFallback, 0x110, "H3_VERSION_FALLBACK"),
    ]

    @Test func valuesAndNamesAreRFC9114s() {
        for entry in Self.codes {
            #expect(entry.code.rawValue == entry.value)
            #expect(entry.code.name == entry.name)
            #expect(HTTP3ErrorCode(rawValue: entry.value) == entry.code)
        }
        #expect(Set(Self.codes.map(\.code)).count == Self.codes.count)
    }

    @Test func otherCodesAreNamedInHex() {
        #expect(HTTP3ErrorCode(rawValue: 0x21).name == "0x21")
        #expect(HTTP3Error(code: .frameError, reason: "cut short").description == "H3_FRAME_ERROR: cut short")
    }
}
