/// One handler in a route, chosen by its `handler` member.
public enum HandlerConfig: Decodable, Sendable, Equatable {
    case staticResponse(StaticResponseConfig)

    /// The handler names this build knows, as written in a config.
    public static let names = ["static_response"]

    enum CodingKeys: String, CodingKey {
        case handler
    }

    public init(from decoder: any Decoder) throws {
        let name = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .handler)
        switch name {
        case "static_response":
            self = .staticResponse(try StaticResponseConfig(from: decoder))
        default:
            throw ConfigError(
                at: JSONPointer(codingPath: decoder.codingPath + [CodingKeys.handler]),
                "unknown handler \"\(name)\"; known handlers: \(Self.names.joined(separator: ", "))")
        }
    }
}

/// Answers with a fixed status, headers and body.
public struct StaticResponseConfig: Decodable, Sendable, Equatable {
    /// Default 200.
    public var status: Int?
    public var headers: [String: [String]]?
    public var body: String?
    /// Close the connection after answering.
    public var close: Bool?

    public init(status: Int? = nil, headers: [String: [String]]? = nil, body: String? = nil, close: Bool? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.close = close
    }
}
