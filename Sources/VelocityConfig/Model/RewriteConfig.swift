/// Changes the request's path (and query) for the matchers and handlers after it; the client is not told.
public struct RewriteConfig: Decodable, Sendable, Equatable {
    /// Removed from the start of the path when present (`/api` turns `/api/users` into `/users`).
    public var stripPrefix: String?
    /// The new path and query, with placeholders such as `{path}` and `{query}`: `/index.php?{query}`.
    /// Applied after `strip_prefix`. A template without `?` keeps the request's query.
    public var uri: String?

    enum CodingKeys: String, CodingKey {
        case stripPrefix = "strip_prefix"
        case uri
    }
}
