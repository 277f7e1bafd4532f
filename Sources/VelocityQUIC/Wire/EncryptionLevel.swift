/// The kind of packet a frame arrived in or is going into. Not a packet number space: 0-RTT and 1-RTT packets
/// share the application data space but may carry different frames (RFC 9000 §12.4, §12.5).
enum EncryptionLevel: Hashable, Sendable {
    case initial
    case zeroRTT
    case handshake
    case oneRTT
}
