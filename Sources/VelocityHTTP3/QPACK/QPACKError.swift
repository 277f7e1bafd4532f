/// A QPACK failure, carrying the HTTP/3 error code (RFC 9204 §6) the stream or connection ends with.
/// The three QPACK codes are connection errors; ``fieldSectionTooLarge`` is for one request only.
struct QPACKError: Error, Equatable, Sendable {
    var code: UInt64
    /// Short and free of peer data, since it may go on the wire as the close reason.
    var reason: String

    /// QPACK_DECOMPRESSION_FAILED: a field section could not be interpreted.
    static let decompressionFailed: UInt64 = 0x0200
    /// QPACK_ENCODER_STREAM_ERROR: an instruction on the peer's encoder stream could not be interpreted.
    static let encoderStreamError: UInt64 = 0x0201
    /// QPACK_DECODER_STREAM_ERROR: an instruction on the peer's decoder stream could not be interpreted.
    static let decoderStreamError: UInt64 = 0x0202
    /// H3_EXCESSIVE_LOAD, used for a field section over SETTINGS_MAX_FIELD_SECTION_SIZE. It is not a
    /// connection error: the server answers 431 on that request, or resets only its stream with this code.
    static let fieldSectionTooLarge: UInt64 = 0x0107

    /// True for the QPACK codes, which close the whole connection.
    var isConnectionError: Bool { (Self.decompressionFailed...Self.decoderStreamError).contains(code) }

    static func decompressionFailed(_ reason: String) -> QPACKError {
        QPACKError(code: decompressionFailed, reason: reason)
    }

    static func encoderStream(_ reason: String) -> QPACKError {
        QPACKError(code: encoderStreamError, reason: reason)
    }

    static func decoderStream(_ reason: String) -> QPACKError {
        QPACKError(code: decoderStreamError, reason: reason)
    }

    static func tooLarge(_ reason: String) -> QPACKError {
        QPACKError(code: fieldSectionTooLarge, reason: reason)
    }

    /// The same failure under another code: primitives don't know which stream they were reading.
    func reported(as code: UInt64) -> QPACKError {
        QPACKError(code: code, reason: reason)
    }
}

extension QPACKError: CustomStringConvertible {
    var description: String {
        let name =
            switch code {
            case Self.decompressionFailed: "QPACK_DECOMPRESSION_FAILED"
            case Self.encoderStreamError: "QPACK_ENCODER_STREAM_ERROR"
            case Self.decoderStreamError: "QPACK_DECODER_STREAM_ERROR"
            case Self.fieldSectionTooLarge: "H3_EXCESSIVE_LOAD"
            default: "0x" + String(code, radix: 16)
            }
        return "\(name): \(reason)"
    }
}
