import NIOCore

/// A connection ID of 0 to 20 bytes (RFC 9000 §5.1), stored inline so that finding a packet's connection
/// allocates nothing.
struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
    static let maxLength = 20

    private var head: UInt64 = 0
    private var middle: UInt64 = 0
    private var tail: UInt32 = 0
    let count: Int

    static let empty = ConnectionID(count: 0)

    private init(count: Int) {
        self.count = count
    }

    /// Nil when `bytes` holds more than 20 bytes.
    init?<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
        guard bytes.count <= Self.maxLength else { return nil }
        self.init(count: bytes.count)
        var index = 0
        for byte in bytes {
            set(byte, at: index)
            index += 1
        }
    }

    /// `count` random bytes from the system generator.
    static func random(count: Int) -> ConnectionID {
        var generator = SystemRandomNumberGenerator()
        var id = ConnectionID(count: count)
        for index in 0..<count { id.set(UInt8.random(in: 0...255, using: &generator), at: index) }
        return id
    }

    var isEmpty: Bool { count == 0 }

    var bytes: [UInt8] { (0..<count).map { self[$0] } }

    subscript(index: Int) -> UInt8 {
        switch index {
        case 0..<8: UInt8(truncatingIfNeeded: head >> (UInt64(7 - index) * 8))
        case 8..<16: UInt8(truncatingIfNeeded: middle >> (UInt64(15 - index) * 8))
        default: UInt8(truncatingIfNeeded: tail >> (UInt32(19 - index) * 8))
        }
    }

    private mutating func set(_ byte: UInt8, at index: Int) {
        switch index {
        case 0..<8: head |= UInt64(byte) << (UInt64(7 - index) * 8)
        case 8..<16: middle |= UInt64(byte) << (UInt64(15 - index) * 8)
        default: tail |= UInt32(byte) << (UInt32(19 - index) * 8)
        }
    }

    var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

extension ByteBuffer {
    /// Reads `length` bytes as a connection ID; nil when fewer remain or `length` is over 20.
    mutating func readConnectionID(length: Int) -> ConnectionID? {
        guard length <= ConnectionID.maxLength, let view = readBytesView(length: length) else { return nil }
        return ConnectionID(view)
    }

    /// Writes the ID's bytes, without a length.
    mutating func writeConnectionID(_ id: ConnectionID) {
        for index in 0..<id.count { writeInteger(id[index]) }
    }

    private mutating func readBytesView(length: Int) -> ByteBufferView? {
        guard length >= 0, readableBytes >= length else { return nil }
        defer { moveReaderIndex(forwardBy: length) }
        return viewBytes(at: readerIndex, length: length)
    }
}
