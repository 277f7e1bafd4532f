/// The frame types of RFC 9114 §7.2 that HTTP/3 uses.
enum HTTP3FrameType {
    static let data: UInt64 = 0x00
    static let headers: UInt64 = 0x01
    static let cancelPush: UInt64 = 0x03
    static let settings: UInt64 = 0x04
    static let pushPromise: UInt64 = 0x05
    static let goaway: UInt64 = 0x07
    static let maxPushID: UInt64 = 0x0D

    /// HTTP/2's PRIORITY, PING, WINDOW_UPDATE and CONTINUATION: their types are reserved so that a peer
    /// that sends one by mistake fails loudly (RFC 9114 §7.2.8).
    static func isReservedHTTP2(_ type: UInt64) -> Bool {
        type == 0x02 || type == 0x06 || type == 0x08 || type == 0x09
    }
}
