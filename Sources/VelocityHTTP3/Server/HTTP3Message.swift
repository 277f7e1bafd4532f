import NIOHTTP1

/// The translation between HTTP/3 field sections and the HTTP/1-shaped parts the request handlers speak
/// (RFC 9114 §4.2–4.3), with the validation that makes a request malformed (H3_MESSAGE_ERROR).
enum HTTP3Message {
    static let version = HTTPVersion(major: 3, minor: 0)

    /// Fields that describe an HTTP/1.1 connection and mean nothing, or something dangerous, in HTTP/3.
    static let connectionSpecific: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
    ]

    /// A request head from a decoded HEADERS section; `:authority` becomes `host`, and cookie crumbs are joined
    /// as HTTP/1.1 expects (§4.2.1). With `extendedConnect` (the server advertised it, RFC 9220), a CONNECT may
    /// carry `:protocol`, which is returned beside the head. Throws H3_MESSAGE_ERROR for a malformed section.
    static func requestHead(
        _ fields: [QPACKField], extendedConnect: Bool
    ) throws(HTTP3Error) -> (HTTPRequestHead, contentLength: UInt64?, connectProtocol: String?) {
        var method: String?
        var scheme: String?
        var authority: String?
        var path: String?
        var connectProtocol: String?
        var headers = HTTPHeaders()
        headers.reserveCapacity(fields.count)
        var cookies: [String] = []
        var contentLength: UInt64?
        var regularSeen = false
        for field in fields {
            guard isValidName(field.name), isValidValue(field.value) else {
                throw malformed("invalid field")
            }
            if field.name.utf8.first == UInt8(ascii: ":") {
                guard !regularSeen else { throw malformed("pseudo-header after a regular field") }
                switch field.name {
                case ":method" where method == nil: method = field.value
                case ":scheme" where scheme == nil: scheme = field.value
                case ":authority" where authority == nil: authority = field.value
                case ":path" where path == nil: path = field.value
                case ":protocol" where connectProtocol == nil && extendedConnect: connectProtocol = field.value
                default: throw malformed("unknown or repeated pseudo-header")
                }
                continue
            }
            regularSeen = true
            switch field.name {
            case _ where connectionSpecific.contains(field.name):
                throw malformed("connection-specific field")
            case "te" where field.value != "trailers":
                throw malformed("te other than trailers")
            case "cookie":
                cookies.append(field.value)
            case "content-length":
                guard let length = UInt64(field.value), contentLength == nil || contentLength == length else {
                    throw malformed("invalid content-length")
                }
                if contentLength == nil { headers.add(name: field.name, value: field.value) }
                contentLength = length
            case "host" where authority != nil && field.value != authority:
                throw malformed("host differs from :authority")
            default:
                headers.add(name: field.name, value: field.value)
            }
        }
        guard let method else { throw malformed("no :method") }
        if method == "CONNECT", connectProtocol == nil {
            guard scheme == nil, path == nil, authority != nil else { throw malformed("malformed CONNECT") }
        } else {
            // An extended CONNECT names its target as other requests do (RFC 8441 §4).
            guard connectProtocol == nil || (method == "CONNECT" && authority != nil) else {
                throw malformed("malformed extended CONNECT")
            }
            guard scheme != nil, let path, !path.isEmpty else { throw malformed("no :scheme or :path") }
        }
        if !cookies.isEmpty { headers.add(name: "cookie", value: cookies.joined(separator: "; ")) }
        if let authority, !headers.contains(name: "host") { headers.add(name: "host", value: authority) }
        let head = HTTPRequestHead(
            version: version, method: HTTPMethod(rawValue: method), uri: path ?? authority ?? "", headers: headers)
        return (head, contentLength, connectProtocol)
    }

    /// Trailer fields: no pseudo-headers allowed.
    static func trailers(_ fields: [QPACKField]) throws(HTTP3Error) -> HTTPHeaders {
        var headers = HTTPHeaders()
        for field in fields {
            guard isValidName(field.name), isValidValue(field.value), field.name.utf8.first != UInt8(ascii: ":"),
                !connectionSpecific.contains(field.name)
            else { throw malformed("invalid trailer field") }
            headers.add(name: field.name, value: field.value)
        }
        return headers
    }

    /// The fields of a response head: `:status`, then the headers in lowercase without the HTTP/1.1
    /// connection fields the handlers may have set.
    static func responseFields(_ head: HTTPResponseHead) -> [QPACKField] {
        var fields = [QPACKField(name: ":status", value: String(head.status.code))]
        fields.reserveCapacity(head.headers.count + 1)
        for (name, value) in head.headers {
            let name = name.lowercased()
            if connectionSpecific.contains(name) { continue }
            fields.append(QPACKField(name: name, value: value))
        }
        return fields
    }

    /// Trailer fields to send, lowercased.
    static func trailerFields(_ headers: HTTPHeaders) -> [QPACKField] {
        headers.compactMap { name, value in
            let name = name.lowercased()
            return connectionSpecific.contains(name) ? nil : QPACKField(name: name, value: value)
        }
    }

    /// A field name is a lowercase token (RFC 9110 §5.1, RFC 9114 §4.2), pseudo-headers with their colon.
    static func isValidName(_ name: String) -> Bool {
        var bytes = name.utf8[...]
        if bytes.first == UInt8(ascii: ":") { bytes = bytes.dropFirst() }
        guard !bytes.isEmpty else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): false
            default: tokenSymbols.contains(byte)
            }
        }
    }

    private static let tokenSymbols = Set("!#$%&'*+-.^_`|~".utf8)

    /// No NUL, CR or LF anywhere, and no whitespace at either end (RFC 9114 §4.2).
    static func isValidValue(_ value: String) -> Bool {
        let bytes = value.utf8
        if let first = bytes.first, first == 0x20 || first == 0x09 { return false }
        if let last = bytes.last, last == 0x20 || last == 0x09 { return false }
        return !bytes.contains { $0 == 0 || $0 == 0x0A || $0 == 0x0D }
    }

    static func malformed(_ reason: String) -> HTTP3Error {
        HTTP3Error(code: .messageError, reason: reason)
    }
}
