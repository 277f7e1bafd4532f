/// A request path as names in the served directory: percent-decoded segment by segment, with `.` and `..`
/// resolved (RFC 3986 §5.2.4) so that nothing climbs above the root.
struct RequestPath: Sendable {
    private(set) var segments: [String] = []
    /// The request named a directory (`/docs/`), which is served by its index or listing.
    let trailingSlash: Bool

    /// Nil when the path cannot name a file: a broken escape, invalid UTF-8, or a segment that decodes to
    /// contain `/`, `\` or NUL (an encoded separator is never a way between directories).
    init?(_ path: Substring) {
        trailingSlash = path.hasSuffix("/")
        for raw in path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            guard let bytes = Self.percentDecoded(raw),
                !bytes.contains(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "\\") || $0 == 0 }),
                let segment = String(validating: bytes, as: UTF8.self)
            else { return nil }
            switch segment {
            case ".": continue
            case "..": _ = segments.popLast()
            default: segments.append(segment)
            }
        }
    }

    /// The path relative to the root, `.` for the root itself.
    var relative: String {
        segments.isEmpty ? "." : segments.joined(separator: "/")
    }

    private static func percentDecoded(_ raw: Substring.UTF8View.SubSequence) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(raw.count)
        var index = raw.startIndex
        while index < raw.endIndex {
            let byte = raw[index]
            if byte == UInt8(ascii: "%") {
                let high = raw.index(after: index)
                guard high < raw.endIndex, raw.index(after: high) < raw.endIndex,
                    let upper = hexValue(raw[high]), let lower = hexValue(raw[raw.index(after: high)])
                else { return nil }
                bytes.append(upper << 4 | lower)
                index = raw.index(high, offsetBy: 2)
            } else {
                bytes.append(byte)
                index = raw.index(after: index)
            }
        }
        return bytes
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
