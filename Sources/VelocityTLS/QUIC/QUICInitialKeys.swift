/// Initial packet keys (RFC 9001 §5.2): derived from the connection ID the client chose, so anyone can compute
/// them; they only keep off-path attackers out and are discarded once the handshake keys arrive.
public enum QUICInitialKeys {
    private static let salt: [UInt8] = [
        0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb,
        0x7f, 0x0a,
    ]

    /// The client's and the server's Initial keys for a client-chosen destination connection ID.
    public static func derive(destinationConnectionID: [UInt8]) -> (client: QUICPacketKey, server: QUICPacketKey) {
        let suite = QUICCipherSuite.aes128GCM
        let initial = HKDFLabel.extract(salt: salt, inputKeyMaterial: destinationConnectionID, digest: suite.digest)
        let client = HKDFLabel.expand(secret: initial, label: "client in", length: 32, digest: suite.digest)
        let server = HKDFLabel.expand(secret: initial, label: "server in", length: 32, digest: suite.digest)
        return (QUICPacketKey(suite: suite, secret: client), QUICPacketKey(suite: suite, secret: server))
    }
}
