/// An HTTP/3 error code (RFC 9114 §8.1), carried by CONNECTION_CLOSE, RESET_STREAM and STOP_SENDING.
struct HTTP3ErrorCode: RawRepresentable, Hashable, Sendable {
    var rawValue: UInt64

    init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    /// No error: the connection or stream closes normally, or a response no longer needs the request body.
    static let noError = HTTP3ErrorCode(rawValue: 0x100)
    /// A protocol violation that no more specific code describes.
    static let generalProtocolError = HTTP3ErrorCode(rawValue: 0x101)
    /// An internal error of this endpoint.
    static let internalError = HTTP3ErrorCode(rawValue: 0x102)
    /// The peer created a stream that this endpoint does not accept.
    static let streamCreationError = HTTP3ErrorCode(rawValue: 0x103)
    /// A stream the connection needs (control, QPACK encoder or decoder) was closed or reset.
    static let closedCriticalStream = HTTP3ErrorCode(rawValue: 0x104)
    /// A frame arrived where it is not allowed: on the wrong stream, or out of order.
    static let frameUnexpected = HTTP3ErrorCode(rawValue: 0x105)
    /// A frame does not match its layout, or a stream ended inside a frame.
    static let frameError = HTTP3ErrorCode(rawValue: 0x106)
    /// The peer is generating more load than this endpoint is willing to carry.
    static let excessiveLoad = HTTP3ErrorCode(rawValue: 0x107)
    /// A stream ID or push ID was used wrongly, for instance above a limit.
    static let idError = HTTP3ErrorCode(rawValue: 0x108)
    /// A SETTINGS frame carried a setting that is forbidden or invalid.
    static let settingsError = HTTP3ErrorCode(rawValue: 0x109)
    /// The control stream did not begin with a SETTINGS frame.
    static let missingSettings = HTTP3ErrorCode(rawValue: 0x10A)
    /// The server refused the request without processing any of it: the client may retry.
    static let requestRejected = HTTP3ErrorCode(rawValue: 0x10B)
    /// The request or its response is no longer wanted.
    static let requestCancelled = HTTP3ErrorCode(rawValue: 0x10C)
    /// The client's stream ended before a complete request.
    static let requestIncomplete = HTTP3ErrorCode(rawValue: 0x10D)
    /// An HTTP message was malformed.
    static let messageError = HTTP3ErrorCode(rawValue: 0x10E)
    /// The TCP connection behind a CONNECT request was reset or failed.
    static let connectError = HTTP3ErrorCode(rawValue: 0x10F)
    /// The request should be retried over HTTP/1.1.
    static let versionFallback = HTTP3ErrorCode(rawValue: 0x110)

    /// The name RFC 9114 gives the code, or its value in hex for a code it does not define.
    var name: String {
        switch self {
        case .noError: "H3_NO_ERROR"
        case .generalProtocolError: "H3_GENERAL_PROTOCOL_ERROR"
        case .internalError: "H3_INTERNAL_ERROR"
        case .streamCreationError: "H3_STREAM_CREATION_ERROR"
        case .closedCriticalStream: "H3_CLOSED_CRITICAL_STREAM"
        case .frameUnexpected: "H3_FRAME_UNEXPECTED"
        case .frameError: "H3_FRAME_ERROR"
        case .excessiveLoad: "H3_EXCESSIVE_LOAD"
        case .idError: "H3_ID_ERROR"
        case .settingsError: "H3_SETTINGS_ERROR"
        case .missingSettings: "H3_MISSING_SETTINGS"
        case .requestRejected: "H3_REQUEST_REJECTED"
        case .requestCancelled: "H3_REQUEST_CANCELLED"
        case .requestIncomplete: "H3_REQUEST_INCOMPLETE"
        case .messageError: "H3_MESSAGE_ERROR"
        case .connectError: "H3_CONNECT_ERROR"
        case .versionFallback: "H3_VERSION_FALLBACK"
        default: "0x" + String(rawValue, radix: 16)
        }
    }
}

/// An HTTP/3 failure: the code the connection or stream ends with, and why.
struct HTTP3Error: Error, Equatable, Sendable {
    var code: HTTP3ErrorCode
    /// Short and free of peer data, since it may go on the wire as the close reason.
    var reason: String
}

extension HTTP3Error: CustomStringConvertible {
    var description: String { "\(code.name): \(reason)" }
}
