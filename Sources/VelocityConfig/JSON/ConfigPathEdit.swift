/// One edit of the config at a path, with the admin API's verb semantics (Caddy's, made stricter).
public enum ConfigPathEdit: Sendable, Equatable {
    /// Object member: create or replace. Array: append, or with `splice` append every element of an array.
    case post(JSONValue, splice: Bool)
    /// Create only: an object member that exists is a conflict; an array index inserts before it.
    case put(JSONValue)
    /// Replace only: the value must exist.
    case patch(JSONValue)
    /// Remove the value, which must exist. At the root it empties the config.
    case delete
}

extension JSONValue {
    public func applying(_ edit: ConfigPathEdit, at pointer: JSONPointer) throws(JSONEditError) -> JSONValue {
        var document = self
        guard let parentPointer = pointer.parent else {
            switch edit {
            case .post(let value, splice: false), .patch(let value): return value
            case .put(let value):
                guard self == .object([:]) || self == .null else {
                    throw JSONEditError(
                        .conflict, at: .root, "a config is already loaded; use POST or PATCH to replace it")
                }
                return value
            case .post(_, splice: true): throw JSONEditError(.invalid, at: .root, "the root is not an array")
            case .delete: return .object([:])
            }
        }
        let parentIsArray = document.value(at: parentPointer)?.arrayValue != nil
        switch edit {
        case .post(let value, let splice):
            try document.update(at: pointer) { (existing) throws(JSONEditError) in
                if parentIsArray {
                    throw JSONEditError(
                        .invalid, at: pointer,
                        "POST to an array index is not allowed: POST to the array to append, PUT to insert, PATCH to replace"
                    )
                }
                if case .array(var array)? = existing {
                    if splice {
                        guard case .array(let elements) = value else {
                            throw JSONEditError(
                                .invalid, at: pointer,
                                "\"...\" appends the elements of an array; the body is \(value.typeName)")
                        }
                        array += elements
                    } else {
                        array.append(value)
                    }
                    return .array(array)
                }
                if splice { throw JSONEditError(.invalid, at: pointer, "\"...\" needs an array at this path") }
                return value
            }
        case .put(let value):
            if parentIsArray {
                try document.add(value, at: pointer)
            } else {
                try document.update(at: pointer) { (existing) throws(JSONEditError) in
                    guard existing == nil else {
                        throw JSONEditError(
                            .conflict, at: pointer, "a value already exists here; use PATCH or POST to replace it")
                    }
                    return value
                }
            }
        case .patch(let value):
            try document.update(at: pointer) { (existing) throws(JSONEditError) in
                guard existing != nil else { throw JSONEditError(.notFound, at: pointer, "no value to replace") }
                return value
            }
        case .delete:
            try document.remove(at: pointer)
        }
        return document
    }
}
