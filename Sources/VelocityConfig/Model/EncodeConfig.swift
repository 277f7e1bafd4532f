/// Compresses the responses of the handlers after it for clients that accept it.
public struct EncodeConfig: Decodable, Sendable, Equatable {
    /// In order of preference when a client accepts several equally. Default `br`, `gzip`.
    public var encodings: [ContentEncoding]?
    /// Bodies shorter than this many bytes are sent as they are. Default 512.
    public var minimumLength: Int?
    /// Media types compressed: exact (`image/svg+xml`) or a prefix (`text/*`). Default: text, JSON,
    /// JavaScript, XML, SVG, WebAssembly and fonts that are not already compressed.
    public var types: [String]?

    public static let defaultMinimumLength = 512
    public static let defaultTypes = [
        "text/*", "application/json", "application/*+json", "application/javascript", "application/xml",
        "application/*+xml", "application/wasm", "image/svg+xml", "image/x-icon", "font/ttf", "font/otf",
    ]

    enum CodingKeys: String, CodingKey {
        case encodings
        case minimumLength = "minimum_length"
        case types
    }
}

public enum ContentEncoding: String, ConfigKeyword, Sendable {
    case br, gzip
}
