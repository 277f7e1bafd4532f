import NIOCore
import VelocityTLS

/// What an address-validation token vouches for (RFC 9000 §8.1): sealed with a key only this server has and
/// bound to the client's IP address, so it cannot be forged, altered or used from elsewhere.
enum AddressToken: Equatable {
    /// Sent in a Retry: the client's first destination ID and the ID the Retry gave it.
    case retry(original: ConnectionID, retryID: ConnectionID)
    /// Sent in NEW_TOKEN, for the client's next connection to skip the Retry.
    case returning

    /// A Retry token is only needed for one round trip.
    static let retryLifetime = TimeAmount.seconds(10)
    static let returningLifetime = TimeAmount.hours(24)

    func seal(with key: QUICTokenKey, for address: SocketAddress, now: NIODeadline) -> [UInt8] {
        var plaintext: [UInt8] = []
        switch self {
        case .retry: plaintext.append(0)
        case .returning: plaintext.append(1)
        }
        withUnsafeBytes(of: now.uptimeNanoseconds.bigEndian) { plaintext += $0 }
        if case .retry(let original, let retryID) = self {
            plaintext.append(UInt8(original.count))
            plaintext += original.bytes
            plaintext += retryID.bytes
        }
        return key.seal(plaintext, context: Self.context(address))
    }

    /// The token's claim, if this server made it for `address` and it has not expired; nil for anything else,
    /// which the server treats as no token at all.
    static func open(_ token: ByteBuffer, with key: QUICTokenKey, for address: SocketAddress, now: NIODeadline)
        -> AddressToken?
    {
        guard token.readableBytes > 0,
            let plaintext = key.open(Array(token.readableBytesView), context: context(address))
        else { return nil }
        var reader = ByteBuffer(bytes: plaintext)
        guard let kind = reader.readInteger(as: UInt8.self), let issued = reader.readInteger(as: UInt64.self),
            now.uptimeNanoseconds >= issued
        else { return nil }
        let age = TimeAmount.nanoseconds(Int64(clamping: now.uptimeNanoseconds - issued))
        switch kind {
        case 0:
            guard age <= retryLifetime, let length = reader.readInteger(as: UInt8.self),
                let original = reader.readConnectionID(length: Int(length)),
                let retryID = reader.readConnectionID(length: reader.readableBytes)
            else { return nil }
            return .retry(original: original, retryID: retryID)
        case 1:
            return age <= returningLifetime && reader.readableBytes == 0 ? .returning : nil
        default:
            return nil
        }
    }

    /// The client's IP address, not its port, which NATs may change between connections.
    private static func context(_ address: SocketAddress) -> [UInt8] {
        Array((address.ipAddress ?? "").utf8)
    }
}
