import NIOCore
import VelocityQUIC

/// The unidirectional streams a peer opens (RFC 9114 §6.2, RFC 9204 §4.2): each starts with its type, and
/// the control, QPACK encoder and QPACK decoder streams may each be opened once. What the bytes after the
/// type mean is up to the caller.
struct HTTP3PeerStreams {
    enum Kind: Equatable {
        case control
        case encoder
        case decoder
        case push
        /// Reserved and unknown types, which the receiver must not treat as errors.
        case unknown
    }

    private enum State {
        case untyped(ByteBuffer)
        case typed(Kind)
    }

    private var streams: [UInt64: State] = [:]
    private var opened: Set<Kind> = []

    /// The kind of stream `id` and the bytes of `data` that follow its type; nil while the type is still
    /// incomplete. A second control, encoder or decoder stream is H3_STREAM_CREATION_ERROR.
    mutating func classify(_ data: ByteBuffer, onStream id: UInt64) throws(HTTP3Error) -> (Kind, ByteBuffer)? {
        switch streams[id] {
        case .typed(let kind):
            return (kind, data)
        case .untyped(var start):
            start.writeImmutableBuffer(data)
            return try type(start, onStream: id)
        case nil:
            return try type(data, onStream: id)
        }
    }

    private mutating func type(_ bytes: ByteBuffer, onStream id: UInt64) throws(HTTP3Error) -> (Kind, ByteBuffer)? {
        var rest = bytes
        guard let type = rest.readQUICVarInt() else {
            streams[id] = .untyped(bytes)
            return nil
        }
        let kind: Kind
        switch type {
        case HTTP3StreamType.control: kind = .control
        case HTTP3StreamType.qpackEncoder: kind = .encoder
        case HTTP3StreamType.qpackDecoder: kind = .decoder
        case HTTP3StreamType.push: kind = .push
        default: kind = .unknown
        }
        if kind != .push, kind != .unknown, !opened.insert(kind).inserted {
            throw HTTP3Error(code: .streamCreationError, reason: "a second \(kind) stream")
        }
        streams[id] = .typed(kind)
        return (kind, rest)
    }

    /// The kind of a stream whose type has been read.
    func kind(of id: UInt64) -> Kind? {
        guard case .typed(let kind) = streams[id] else { return nil }
        return kind
    }

    mutating func forget(_ id: UInt64) {
        streams[id] = nil
    }
}
