/// A path matcher pattern: `*` (any), `/exact`, `/prefix/*` or `*.suffix`.
public enum PathPattern: Sendable, Hashable {
    case any
    case exact(String)
    case prefix(String)
    case suffix(String)

    public init?(_ pattern: String) {
        let stars = pattern.count(where: { $0 == "*" })
        switch stars {
        case 0 where pattern.hasPrefix("/"): self = .exact(pattern)
        case 1 where pattern == "*": self = .any
        case 1 where pattern.hasSuffix("*") && pattern.hasPrefix("/"): self = .prefix(String(pattern.dropLast()))
        case 1 where pattern.hasPrefix("*"): self = .suffix(String(pattern.dropFirst()))
        default: return nil
        }
    }

    /// Compares bytes, as a URL path is: no Unicode normalization, and fast on the request path.
    public func matches(_ path: Substring) -> Bool {
        switch self {
        case .any: true
        case .exact(let exact): path.utf8.elementsEqual(exact.utf8)
        case .prefix(let prefix): path.utf8.starts(with: prefix.utf8)
        case .suffix(let suffix):
            path.utf8.count >= suffix.utf8.count && path.utf8.suffix(suffix.utf8.count).elementsEqual(suffix.utf8)
        }
    }
}
