import Crypto
import Foundation

/// The key and accept values of a WebSocket opening handshake (RFC 6455 §4). Velocity makes the handshake
/// itself for a client that opened its WebSocket with extended CONNECT, which has neither field (RFC 8441 §5),
/// so it also checks the upstream's answer in the client's place.
enum WebSocketHandshake {
    private static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// A fresh Sec-WebSocket-Key: 16 random bytes in base64.
    static func makeKey() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = Data(count: 16)
        for index in bytes.indices { bytes[index] = generator.next() }
        return bytes.base64EncodedString()
    }

    /// The Sec-WebSocket-Accept an upstream must answer `key` with.
    static func accept(forKey key: String) -> String {
        Data(Insecure.SHA1.hash(data: Data((key + guid).utf8))).base64EncodedString()
    }
}
