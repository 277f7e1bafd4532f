/// Serves files under a directory.
public struct FileServerConfig: Decodable, Sendable, Equatable {
    /// The directory served. Read on every request, so a deploy that repoints a symlink takes effect at once.
    public var root: String
    /// Files tried, in order, when a request names a directory. Default `index.html`, `index.htm`.
    public var indexNames: [String]?
    /// List a directory that has no index file (otherwise 404).
    public var browse: Bool?
    /// File names or `*` patterns (`*.bak`, `secret*`) never served or listed, whatever directory they are in.
    public var hide: [String]?
    /// Names starting with a dot (`.git`, `.env`) are hidden unless this is `serve`; `.well-known` is
    /// always served.
    public var dotfiles: DotfilePolicy?
    /// Encodings whose precompressed siblings (`app.js.br`, `app.js.gz`) are sent to clients that accept them,
    /// in order of preference.
    public var precompressed: [PrecompressedEncoding]?
    /// A request for a file that does not exist goes on to the next handler instead of answering 404.
    public var passThru: Bool?

    public static let defaultIndexNames = ["index.html", "index.htm"]

    enum CodingKeys: String, CodingKey {
        case root
        case indexNames = "index_names"
        case browse, hide, dotfiles, precompressed
        case passThru = "pass_thru"
    }
}

public enum DotfilePolicy: String, ConfigKeyword, Sendable {
    case hide, serve
}

public enum PrecompressedEncoding: String, ConfigKeyword, Sendable {
    case br, gzip

    /// The file name suffix of a sibling in this encoding.
    public var fileSuffix: String {
        switch self {
        case .br: ".br"
        case .gzip: ".gz"
        }
    }
}
