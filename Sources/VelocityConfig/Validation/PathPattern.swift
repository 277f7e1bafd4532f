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

    public func matches(_ path: Substring) -> Bool {
        switch self {
        case .any: true
        case .exact(let exact): path == exact
        case .prefix(let prefix): path.hasPrefix(prefix)
        case .suffix(let suffix): path.hasSuffix(suffix)
        }
    }
}
