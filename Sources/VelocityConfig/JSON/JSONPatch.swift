/// RFC 6902 JSON Patch and RFC 7396 JSON Merge Patch, applied as one batch: either every operation applies or
/// the document is returned unchanged through the thrown error.
extension JSONValue {
    public func applyingJSONPatch(_ patch: JSONValue) throws(JSONEditError) -> JSONValue {
        guard case .array(let operations) = patch else {
            throw JSONEditError(.invalid, at: .root, "a JSON Patch must be an array of operations")
        }
        var document = self
        for (position, operation) in operations.enumerated() {
            try document.apply(operation, number: position)
        }
        return document
    }

    /// Applies operation `number` of a patch. A malformed operation is reported by its number, with the root
    /// pointer: pointers in errors always name places in the document, never in the patch.
    private mutating func apply(_ operation: JSONValue, number: Int) throws(JSONEditError) {
        func malformed(_ message: String) -> JSONEditError {
            JSONEditError(.invalid, at: .root, "patch operation \(number): \(message)")
        }
        guard case .object(let fields) = operation else { throw malformed("must be an object") }
        func pointer(_ name: String) throws(JSONEditError) -> JSONPointer {
            guard case .string(let text)? = fields[name] else {
                throw malformed("\"\(name)\" must be a JSON Pointer string")
            }
            guard let pointer = JSONPointer(text) else { throw malformed("\"\(text)\" is not a JSON Pointer") }
            return pointer
        }
        func operand() throws(JSONEditError) -> JSONValue {
            guard let value = fields["value"] else { throw malformed("needs a \"value\"") }
            return value
        }
        guard case .string(let op)? = fields["op"] else { throw malformed("\"op\" must be a string") }
        switch op {
        case "add":
            try add(try operand(), at: try pointer("path"))
        case "remove":
            _ = try remove(at: try pointer("path"))
        case "replace":
            let path = try pointer("path")
            let value = try operand()
            try update(at: path) { (existing) throws(JSONEditError) in
                guard existing != nil else { throw JSONEditError(.notFound, at: path, "no value to replace") }
                return value
            }
        case "move":
            let from = try pointer("from")
            let path = try pointer("path")
            guard !(path.tokens.starts(with: from.tokens) && path.tokens.count > from.tokens.count) else {
                throw JSONEditError(.invalid, at: path, "cannot move a value into itself")
            }
            let value = try remove(at: from)
            try add(value, at: path)
        case "copy":
            let from = try pointer("from")
            guard let value = value(at: from) else {
                throw JSONEditError(.notFound, at: from, "no value to copy")
            }
            try add(value, at: try pointer("path"))
        case "test":
            let path = try pointer("path")
            guard let actual = value(at: path), actual.isJSONEqual(to: try operand()) else {
                throw JSONEditError(.conflict, at: path, "test failed: the value differs")
            }
        default:
            throw malformed("unknown operation \"\(op)\"")
        }
    }

    /// RFC 6902 "add": inserts into an array (at an index or `-`), or sets an object member.
    mutating func add(_ value: JSONValue, at pointer: JSONPointer) throws(JSONEditError) {
        guard let parentPointer = pointer.parent, let token = pointer.tokens.last else {
            self = value
            return
        }
        try update(at: parentPointer) { (parent) throws(JSONEditError) in
            switch parent {
            case .object(var object)?:
                object[token] = value
                return .object(object)
            case .array(var array)?:
                guard let index = Self.arrayIndex(token, count: array.count), index <= array.count else {
                    throw JSONEditError(.invalid, at: pointer, "array index out of range (array has \(array.count))")
                }
                array.insert(value, at: index)
                return .array(array)
            case let other?:
                throw JSONEditError(.invalid, at: parentPointer, "cannot add a member to \(other.typeName)")
            case nil:
                throw JSONEditError(.notFound, at: parentPointer, "no value at this path")
            }
        }
    }

    /// Removes and returns the value at `pointer`, which must exist.
    @discardableResult
    mutating func remove(at pointer: JSONPointer) throws(JSONEditError) -> JSONValue {
        var removed: JSONValue?
        try update(at: pointer) { (existing) throws(JSONEditError) in
            guard let existing else { throw JSONEditError(.notFound, at: pointer, "no value at this path") }
            removed = existing
            return nil
        }
        return removed!
    }

    /// RFC 7396: objects merge member by member, `null` removes, anything else replaces.
    public func applyingMergePatch(_ patch: JSONValue) -> JSONValue {
        guard case .object(let changes) = patch else { return patch }
        var object = objectValue ?? [:]
        for (key, change) in changes {
            if change == .null {
                object[key] = nil
            } else {
                object[key] = (object[key] ?? .null).applyingMergePatch(change)
            }
        }
        return .object(object)
    }

    /// Equality as JSON defines it: numbers compare by value, whatever their written form.
    public func isJSONEqual(to other: JSONValue) -> Bool {
        switch (self, other) {
        case (.integer(let a), .double(let b)), (.double(let b), .integer(let a)): Double(a) == b
        case (.array(let a), .array(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.isJSONEqual(to: $1) }
        case (.object(let a), .object(let b)):
            a.count == b.count && a.allSatisfy { key, value in b[key].map { value.isJSONEqual(to: $0) } ?? false }
        default: self == other
        }
    }
}
