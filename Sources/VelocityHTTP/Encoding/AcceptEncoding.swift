import VelocityConfig

/// Reads `Accept-Encoding` (RFC 9110 §12.5.3): the encoding with the highest quality among those offered,
/// ties going to the earlier offer; `q=0` refuses one, and `*` stands for any not named.
enum AcceptEncoding {
    static func preferred(_ offered: [ContentEncoding], in header: String) -> ContentEncoding? {
        var best: (encoding: ContentEncoding, quality: Int)?
        for encoding in offered {
            let quality = quality(of: encoding.token, in: header)
            if quality > 0, quality > (best?.quality ?? 0) { best = (encoding, quality) }
        }
        return best?.encoding
    }

    /// The quality in thousandths the header gives a token (0 when absent).
    static func quality(of token: String, in header: String) -> Int {
        var wildcard = 0
        for item in header.split(separator: ",") {
            let parts = item.split(separator: ";")
            guard let name = parts.first?.trimmingCharacters(where: { $0 == " " || $0 == "\t" }) else { continue }
            let quality = parts.dropFirst().lazy.compactMap(Self.qValue).first ?? 1000
            if name.caseInsensitiveEquals(token) { return quality }
            if name == "*" { wildcard = quality }
        }
        return wildcard
    }

    /// `q=0.5` as 500; nil for any other parameter or a malformed value.
    private static func qValue(_ parameter: Substring) -> Int? {
        let trimmed = parameter.trimmingCharacters(where: { $0 == " " || $0 == "\t" })
        guard trimmed.hasPrefix("q=") || trimmed.hasPrefix("Q=") else { return nil }
        let value = trimmed.dropFirst(2)
        let parts = value.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = Int(parts[0]), (0...1).contains(whole) else { return 0 }
        var fraction = parts.count == 2 ? String(parts[1].prefix(3)) : ""
        guard fraction.allSatisfy(\.isNumber) else { return 0 }
        while fraction.count < 3 { fraction += "0" }
        return min(1000, whole * 1000 + (Int(fraction) ?? 0))
    }
}

extension ContentEncoding {
    /// The `Content-Encoding` token.
    public var token: String { rawValue }
}

extension Substring {
    func trimmingCharacters(where predicate: (Character) -> Bool) -> Substring {
        var result = self
        while let first = result.first, predicate(first) { result = result.dropFirst() }
        while let last = result.last, predicate(last) { result = result.dropLast() }
        return result
    }

    func caseInsensitiveEquals(_ other: String) -> Bool {
        utf8.count == other.utf8.count
            && zip(utf8, other.utf8).allSatisfy { Self.lowercased($0) == Self.lowercased($1) }
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }
}
