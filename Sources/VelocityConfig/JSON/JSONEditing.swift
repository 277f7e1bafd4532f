/// Why an edit of a JSON document could not be made; `status` is the HTTP status the admin API answers with.
public struct JSONEditError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case notFound
        case conflict
        case invalid
    }

    public var kind: Kind
    public var pointer: JSONPointer
    public var message: String

    public init(_ kind: Kind, at pointer: JSONPointer, _ message: String) {
        self.kind = kind
        self.pointer = pointer
        self.message = message
    }

    public var description: String { "\(pointer): \(message)" }
}

extension JSONValue {
    /// The value at `pointer`, or nil if any step does not exist.
    public func value(at pointer: JSONPointer) -> JSONValue? {
        var current = self
        for token in pointer.tokens {
            switch current {
            case .object(let object):
                guard let next = object[token] else { return nil }
                current = next
            case .array(let array):
                guard let index = Self.arrayIndex(token, count: array.count), index < array.count else { return nil }
                current = array[index]
            default:
                return nil
            }
        }
        return current
    }

    /// Replaces the value at `pointer` with what `body` makes of it. The parent must exist; `body` receives
    /// nil when the last step does not exist yet and returns nil to remove it.
    public mutating func update(
        at pointer: JSONPointer,
        _ body: (JSONValue?) throws(JSONEditError) -> JSONValue?
    ) throws(JSONEditError) {
        try update(tokens: pointer.tokens[...], walked: .root, body)
    }

    private mutating func update(
        tokens: ArraySlice<String>,
        walked: JSONPointer,
        _ body: (JSONValue?) throws(JSONEditError) -> JSONValue?
    ) throws(JSONEditError) {
        guard let token = tokens.first else {
            guard let replacement = try body(self) else {
                throw JSONEditError(.invalid, at: walked, "the root cannot be removed")
            }
            self = replacement
            return
        }
        let here = walked.appending(token)
        let rest = tokens.dropFirst()
        switch self {
        case .object(var object):
            if rest.isEmpty {
                object[token] = try body(object[token])
            } else {
                guard var child = object[token] else {
                    throw JSONEditError(.notFound, at: here, "no value at this path")
                }
                object[token] = nil  // keep the child uniquely referenced while it is edited
                try child.update(tokens: rest, walked: here, body)
                object[token] = child
            }
            self = .object(object)
        case .array(var array):
            guard let index = Self.arrayIndex(token, count: array.count) else {
                throw JSONEditError(.invalid, at: here, "\"\(token)\" is not an array index")
            }
            if rest.isEmpty {
                let existing = index < array.count ? array[index] : nil
                let replacement = try body(existing)
                switch (existing, replacement) {
                case (.some, .some(let value)): array[index] = value
                case (.some, nil): array.remove(at: index)
                case (nil, .some(let value)): array.append(value)
                case (nil, nil): break
                }
            } else {
                guard index < array.count else {
                    throw JSONEditError(.notFound, at: here, "index out of range (array has \(array.count))")
                }
                try array[index].update(tokens: rest, walked: here, body)
            }
            self = .array(array)
        default:
            throw JSONEditError(.notFound, at: here, "cannot descend into \(typeName)")
        }
    }

    /// An array index token: digits without a leading zero, or `-` (one past the end), as in RFC 6901.
    static func arrayIndex(_ token: String, count: Int) -> Int? {
        if token == "-" { return count }
        guard !token.isEmpty, token.allSatisfy(\.isASCII), token.allSatisfy(\.isNumber),
            token == "0" || !token.hasPrefix("0")
        else { return nil }
        return Int(token)
    }
}
