import HTTPTypes
import VelocityConfig

/// A compiled `encode` handler: which responses it compresses, and how the encoding is chosen.
public struct EncodeRule: Sendable {
    private let encodings: [ContentEncoding]
    public let minimumLength: Int
    private let exactTypes: Set<Substring>
    /// `text/*` as "text/"; `application/*+json` as ("application/", "+json").
    private let typePrefixes: [(prefix: String, suffix: String)]

    init(_ config: EncodeConfig) {
        encodings = config.encodings ?? [.br, .gzip]
        minimumLength = config.minimumLength ?? EncodeConfig.defaultMinimumLength
        var exact: Set<Substring> = []
        var prefixes: [(String, String)] = []
        for type in config.types ?? EncodeConfig.defaultTypes {
            let lowered = type.lowercased()
            if let star = lowered.firstIndex(of: "*") {
                prefixes.append((String(lowered[..<star]), String(lowered[lowered.index(after: star)...])))
            } else {
                exact.insert(Substring(lowered))
            }
        }
        exactTypes = exact
        typePrefixes = prefixes
    }

    /// The encoding for a response, or nil to send it as it is. `length` is the body's size when known.
    public func encoding(
        request: HTTPFields, status: HTTPResponse.Status, response: HTTPFields, length: Int?
    ) -> ContentEncoding? {
        guard status.kind == .successful, status != .partialContent, status != .noContent,
            response[.contentEncoding] == nil, response[.contentRange] == nil,
            length.map({ $0 >= minimumLength }) ?? true,
            let type = response[.contentType], compresses(type),
            let accepted = request[.acceptEncoding]
        else { return nil }
        return AcceptEncoding.preferred(encodings, in: accepted)
    }

    /// Makes `fields` describe the compressed representation: its encoding, `Vary`, and a validator that can
    /// only be weak now (RFC 9110 §8.8.1). The length is the caller's to drop or set.
    public static func markEncoded(_ fields: inout HTTPFields, _ coding: ContentEncoding) {
        fields[.contentEncoding] = coding.token
        if !(fields[.vary]?.lowercased().contains("accept-encoding") ?? false) {
            fields.append(HTTPField(name: .vary, value: "Accept-Encoding"))
        }
        if let etag = fields[.eTag], etag.hasPrefix("\"") { fields[.eTag] = "W/" + etag }
    }

    private func compresses(_ contentType: String) -> Bool {
        var type = Substring(contentType)
        if let semicolon = type.firstIndex(of: ";") { type = type[..<semicolon] }
        type = type.trimmingCharacters(where: { $0 == " " })
        let lowered = type.lowercased()
        if exactTypes.contains(Substring(lowered)) { return true }
        return typePrefixes.contains { lowered.hasPrefix($0.prefix) && lowered.hasSuffix($0.suffix) }
    }
}
