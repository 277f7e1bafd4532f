/// A config value from a fixed set of words; a wrong one is reported with the words that are allowed.
protocol ConfigKeyword: RawRepresentable<String>, CaseIterable, Decodable {}

extension ConfigKeyword {
    public init(from decoder: any Decoder) throws {
        let word = try decoder.singleValueContainer().decode(String.self)
        guard let value = Self(rawValue: word) else {
            let allowed = Self.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw ConfigError(at: JSONPointer(codingPath: decoder.codingPath), "\"\(word)\" is not one of \(allowed)")
        }
        self = value
    }
}
