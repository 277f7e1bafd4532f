/// Decodes `Decodable` types from a ``JSONValue`` and rejects what they do not read.
///
/// After a type has decoded itself from an object, every member it did not ask for is an unknown field and an
/// error with its path. `@id` is allowed on any object: it names the object for the admin API's `/id/` routes.
/// Errors are ``ConfigError``s with the JSON Pointer of the offending value.
public enum StrictDecoder {
    public static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        do {
            return try ValueDecoder(value: value, codingPath: []).decodeChecked(type)
        } catch let error as DecodingError {
            throw ConfigError(decodingError: error)
        }
    }
}

extension ConfigError {
    init(decodingError: DecodingError) {
        switch decodingError {
        case .dataCorrupted(let context), .typeMismatch(_, let context), .valueNotFound(_, let context):
            self.init(at: JSONPointer(codingPath: context.codingPath), context.debugDescription)
        case .keyNotFound(let key, let context):
            self.init(at: JSONPointer(codingPath: context.codingPath), "missing required field \"\(key.stringValue)\"")
        @unknown default:
            self.init(at: .root, "\(decodingError)")
        }
    }
}

extension JSONPointer {
    init(codingPath: [any CodingKey]) {
        self.init(tokens: codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue })
    }
}

private struct IndexKey: CodingKey {
    var intValue: Int?
    var stringValue: String { String(intValue!) }
    init(_ index: Int) { intValue = index }
    init?(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { nil }
}

private final class ValueDecoder: Decoder, SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    /// Members read through any keyed container of this object; nil until one is made.
    var readKeys: Set<String>?

    init(value: JSONValue, codingPath: [any CodingKey]) {
        self.value = value
        self.codingPath = codingPath
    }

    var pointer: JSONPointer { JSONPointer(codingPath: codingPath) }

    func decodeChecked<T: Decodable>(_ type: T.Type) throws -> T {
        let result = try T(from: self)
        if let readKeys, case .object(let object) = value {
            for key in object.keys.sorted() where key != "@id" && !readKeys.contains(key) {
                throw ConfigError(at: pointer.appending(key), "unknown field \"\(key)\"")
            }
        }
        return result
    }

    func mismatch(_ expected: String) -> ConfigError {
        ConfigError(at: pointer, "expected \(expected), found \(value.typeName)")
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let object) = value else { throw mismatch("an object") }
        if readKeys == nil { readKeys = [] }
        return KeyedDecodingContainer(KeyedContainer<Key>(decoder: self, object: object))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let array) = value else { throw mismatch("an array") }
        return UnkeyedContainer(array: array, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

    func decodeNil() -> Bool { value == .null }

    func decode(_ type: Bool.Type) throws -> Bool {
        guard case .bool(let bool) = value else { throw mismatch("a boolean") }
        return bool
    }

    func decode(_ type: String.Type) throws -> String {
        guard case .string(let string) = value else { throw mismatch("a string") }
        return string
    }

    func decode(_ type: Double.Type) throws -> Double {
        switch value {
        case .integer(let integer): return Double(integer)
        case .double(let double): return double
        default: throw mismatch("a number")
        }
    }

    func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }

    func decodeInteger<I: FixedWidthInteger>() throws -> I {
        switch value {
        case .integer(let integer):
            guard let exact = I(exactly: integer) else {
                throw ConfigError(at: pointer, "\(integer) is out of range")
            }
            return exact
        case .double(let double):
            guard let exact = I(exactly: double) else { throw mismatch("a whole number") }
            return exact
        default:
            throw mismatch("a whole number")
        }
    }

    func decode(_ type: Int.Type) throws -> Int { try decodeInteger() }
    func decode(_ type: Int8.Type) throws -> Int8 { try decodeInteger() }
    func decode(_ type: Int16.Type) throws -> Int16 { try decodeInteger() }
    func decode(_ type: Int32.Type) throws -> Int32 { try decodeInteger() }
    func decode(_ type: Int64.Type) throws -> Int64 { try decodeInteger() }
    func decode(_ type: UInt.Type) throws -> UInt { try decodeInteger() }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try decodeInteger() }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try decodeInteger() }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try decodeInteger() }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try decodeInteger() }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        return try decodeChecked(type)
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: ValueDecoder
    let object: [String: JSONValue]

    var codingPath: [any CodingKey] { decoder.codingPath }
    var allKeys: [Key] { object.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool {
        decoder.readKeys?.insert(key.stringValue)
        return object[key.stringValue] != nil
    }

    private func child(_ key: Key) throws -> ValueDecoder {
        decoder.readKeys?.insert(key.stringValue)
        guard let value = object[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: ""))
        }
        return ValueDecoder(value: value, codingPath: codingPath + [key])
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        decoder.readKeys?.insert(key.stringValue)
        return object[key.stringValue].map { $0 == .null } ?? true
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try child(key).decode(type)
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        decoder.readKeys?.insert(key.stringValue)
        guard let value = object[key.stringValue] else { return nil }
        let child = ValueDecoder(value: value, codingPath: codingPath + [key])
        // One way to say "default": leave the member out. A null would make the schema and the documents ambiguous.
        guard value != .null else {
            throw ConfigError(at: child.pointer, "null is not allowed; leave the member out instead")
        }
        return try child.decode(type)
    }

    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type,
        forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try child(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try child(key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { decoder }
    func superDecoder(forKey key: Key) throws -> any Decoder { try child(key) }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let array: [JSONValue]
    let codingPath: [any CodingKey]
    var currentIndex = 0

    init(array: [JSONValue], codingPath: [any CodingKey]) {
        self.array = array
        self.codingPath = codingPath
    }

    var count: Int? { array.count }
    var isAtEnd: Bool { currentIndex >= array.count }

    private mutating func next() throws -> ValueDecoder {
        guard !isAtEnd else {
            throw ConfigError(at: JSONPointer(codingPath: codingPath), "array has too few elements")
        }
        defer { currentIndex += 1 }
        return ValueDecoder(value: array[currentIndex], codingPath: codingPath + [IndexKey(currentIndex)])
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, array[currentIndex] == .null else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next().decode(type) }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try next().unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder { try next() }
}
