import NIOCore

@testable import VelocityHTTP3

extension ByteBuffer {
    /// Bytes written as hex, spaces allowed, as the RFCs print them.
    init(hex: String) {
        let digits = hex.filter { !$0.isWhitespace }.map { UInt8(String($0), radix: 16)! }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: digits.count, by: 2) {
            bytes.append(digits[index] << 4 | digits[index + 1])
        }
        self.init(bytes: bytes)
    }

    var hex: String {
        readableBytesView.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

/// A seeded generator, so that a failing random case fails again.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension RandomNumberGenerator {
    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) }
    }
}

extension QPACKField {
    init(_ name: String, _ value: String, neverIndex: Bool = false) {
        self.init(name: name, value: value, neverIndex: neverIndex)
    }
}

extension DynamicTable {
    /// The live entries, oldest first, with their absolute indices, as RFC 9204 Appendix B lists them.
    var listing: [String] {
        (evictedCount..<insertCount).map { index in
            let entry = self[absolute: index]!
            return "\(index) \(entry.name)=\(entry.value)"
        }
    }
}
