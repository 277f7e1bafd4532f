/// A QUIC connection error (RFC 9000 §20.1): what a CONNECTION_CLOSE frame of type 0x1c carries. Parsers throw
/// it so that the connection can close with the code the RFC asks for, naming the frame that was at fault.
struct TransportError: Error, Equatable, Sendable {
    var code: UInt64
    /// The type of the frame that caused the error, when one did.
    var frameType: UInt64?
    /// Short and free of peer data, since it goes on the wire as the close reason.
    var reason: String

    init(code: UInt64, frameType: UInt64? = nil, reason: String) {
        self.code = code
        self.frameType = frameType
        self.reason = reason
    }

    static let noError: UInt64 = 0x00
    static let internalError: UInt64 = 0x01
    static let connectionRefused: UInt64 = 0x02
    static let flowControlError: UInt64 = 0x03
    static let streamLimitError: UInt64 = 0x04
    static let streamStateError: UInt64 = 0x05
    static let finalSizeError: UInt64 = 0x06
    static let frameEncodingError: UInt64 = 0x07
    static let transportParameterError: UInt64 = 0x08
    static let connectionIDLimitError: UInt64 = 0x09
    static let protocolViolation: UInt64 = 0x0A
    static let invalidToken: UInt64 = 0x0B
    static let applicationError: UInt64 = 0x0C
    static let cryptoBufferExceeded: UInt64 = 0x0D
    static let keyUpdateError: UInt64 = 0x0E
    static let aeadLimitReached: UInt64 = 0x0F
    static let noViablePath: UInt64 = 0x10

    /// The code for a TLS alert raised by the handshake (0x0100 to 0x01ff).
    static func cryptoError(alert: UInt8) -> UInt64 { 0x0100 + UInt64(alert) }

    static func internalError(_ reason: String) -> TransportError {
        TransportError(code: internalError, reason: reason)
    }

    static func flowControl(_ reason: String, frameType: UInt64? = nil) -> TransportError {
        TransportError(code: flowControlError, frameType: frameType, reason: reason)
    }

    static func streamLimit(_ reason: String, frameType: UInt64? = nil) -> TransportError {
        TransportError(code: streamLimitError, frameType: frameType, reason: reason)
    }

    static func streamState(_ reason: String, frameType: UInt64? = nil) -> TransportError {
        TransportError(code: streamStateError, frameType: frameType, reason: reason)
    }

    static func finalSize(_ reason: String, frameType: UInt64? = nil) -> TransportError {
        TransportError(code: finalSizeError, frameType: frameType, reason: reason)
    }

    static func frameEncoding(_ reason: String, frameType: UInt64? = nil) -> TransportError {
        TransportError(code: frameEncodingError, frameType: frameType, reason: reason)
    }

    static func transportParameter(_ reason: String) -> TransportError {
        TransportError(code: transportParameterError, reason: reason)
    }

    static func connectionIDLimit(_ reason: String, frameType: UInt64? = nil) -> TransportError {
        TransportError(code: connectionIDLimitError, frameType: frameType, reason: reason)
    }

    static func protocolViolation(_ reason: String, frameType: UInt64? = nil) -> TransportError {
        TransportError(code: protocolViolation, frameType: frameType, reason: reason)
    }

    static func cryptoBufferExceeded(_ reason: String) -> TransportError {
        TransportError(code: cryptoBufferExceeded, frameType: FrameType.crypto, reason: reason)
    }

    static func crypto(alert: UInt8, _ reason: String) -> TransportError {
        TransportError(code: cryptoError(alert: alert), reason: reason)
    }
}

extension TransportError: CustomStringConvertible {
    var description: String {
        let frame = frameType.map { " in frame 0x" + String($0, radix: 16) } ?? ""
        return "\(Self.name(of: code))\(frame): \(reason)"
    }

    /// The RFC's name for `code`, for logs.
    static func name(of code: UInt64) -> String {
        switch code {
        case noError: "NO_ERROR"
        case internalError: "INTERNAL_ERROR"
        case connectionRefused: "CONNECTION_REFUSED"
        case flowControlError: "FLOW_CONTROL_ERROR"
        case streamLimitError: "STREAM_LIMIT_ERROR"
        case streamStateError: "STREAM_STATE_ERROR"
        case finalSizeError: "FINAL_SIZE_ERROR"
        case frameEncodingError: "FRAME_ENCODING_ERROR"
        case transportParameterError: "TRANSPORT_PARAMETER_ERROR"
        case connectionIDLimitError: "CONNECTION_ID_LIMIT_ERROR"
        case protocolViolation: "PROTOCOL_VIOLATION"
        case invalidToken: "INVALID_TOKEN"
        case applicationError: "APPLICATION_ERROR"
        case cryptoBufferExceeded: "CRYPTO_BUFFER_EXCEEDED"
        case keyUpdateError: "KEY_UPDATE_ERROR"
        case aeadLimitReached: "AEAD_LIMIT_REACHED"
        case noViablePath: "NO_VIABLE_PATH"
        case 0x0100...0x01FF: "CRYPTO_ERROR(alert \(code - 0x0100))"
        default: "0x" + String(code, radix: 16)
        }
    }
}
