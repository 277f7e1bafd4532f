/// The type that opens every unidirectional stream (RFC 9114 §6.2, RFC 9204 §4.2). Other types, the reserved
/// 0x1f * N + 0x21 among them, belong to extensions: a receiver that does not know one stops reading the
/// stream or discards what it carries.
enum HTTP3StreamType {
    static let control: UInt64 = 0x00
    static let push: UInt64 = 0x01
    static let qpackEncoder: UInt64 = 0x02
    static let qpackDecoder: UInt64 = 0x03
}
