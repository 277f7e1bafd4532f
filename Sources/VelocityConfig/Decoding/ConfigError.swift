/// A config that cannot be accepted: where (a JSON Pointer into the submitted document) and why.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var pointer: JSONPointer
    public var message: String

    public init(at pointer: JSONPointer, _ message: String) {
        self.pointer = pointer
        self.message = message
    }

    public var description: String {
        pointer.tokens.isEmpty ? message : "\(pointer): \(message)"
    }
}
