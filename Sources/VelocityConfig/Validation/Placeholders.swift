/// The `{name}` placeholders a redirect target may use, and how a template splits into text and placeholders.
public enum Placeholders {
    public static let names: Set<String> = ["scheme", "host", "uri", "path", "query", "method", "remote_ip"]

    public enum Part: Sendable, Equatable {
        case text(String)
        case placeholder(String)
    }

    /// The parts of a template; nil when a brace is unbalanced.
    public static func parts(of template: String) -> [Part]? {
        var parts: [Part] = []
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            if open > rest.startIndex { parts.append(.text(String(rest[..<open]))) }
            guard let close = rest[open...].firstIndex(of: "}") else { return nil }
            parts.append(.placeholder(String(rest[rest.index(after: open)..<close])))
            rest = rest[rest.index(after: close)...]
        }
        guard !rest.contains("}") else { return nil }
        if !rest.isEmpty { parts.append(.text(String(rest))) }
        return parts
    }

    /// Why a template cannot be used, or nil.
    static func problem(in template: String) -> String? {
        guard !template.isEmpty else { return "a redirect needs a target" }
        guard let parts = parts(of: template) else { return "unbalanced brace in \"\(template)\"" }
        for case .placeholder(let name) in parts where !names.contains(name) {
            return "unknown placeholder {\(name)}; known: " + names.sorted().map { "{\($0)}" }.joined(separator: ", ")
        }
        guard !template.utf8.contains(where: { $0 == 13 || $0 == 10 }) else {
            return "a target cannot contain CR or LF"
        }
        return nil
    }
}
