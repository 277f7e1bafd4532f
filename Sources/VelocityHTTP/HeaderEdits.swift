import HTTPTypes
import VelocityConfig

/// A compiled `headers` operation set: delete, then set, then add.
public struct HeaderEdits: Sendable {
    private var delete: [HTTPField.Name] = []
    private var set: [(HTTPField.Name, [String])] = []
    private var add: [(HTTPField.Name, [String])] = []

    init(_ operations: HeaderOperations) {
        // Validation has checked every name, so none is dropped here.
        delete = (operations.delete ?? []).compactMap { HTTPField.Name($0) }
        set = Self.fields(operations.set)
        add = Self.fields(operations.add)
    }

    private static func fields(_ map: [String: [String]]?) -> [(HTTPField.Name, [String])] {
        (map ?? [:]).sorted { $0.key < $1.key }.compactMap { name, values in HTTPField.Name(name).map { ($0, values) } }
    }

    public func apply(to fields: inout HTTPFields) {
        for name in delete { fields[name] = nil }
        for (name, values) in set { fields[values: name] = values }
        for (name, values) in add {
            for value in values { fields.append(HTTPField(name: name, value: value)) }
        }
    }
}
