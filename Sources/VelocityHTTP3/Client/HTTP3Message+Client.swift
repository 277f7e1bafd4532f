import NIOHTTP1

/// The client's half of the translation between HTTP/3 field sections and HTTP/1-shaped heads (RFC 9114
/// §4.3): requests out, responses in, with the same field rules as the server's half.
extension HTTP3Message {
    /// The fields of a request: `:method`, `:scheme`, `:authority` (the `host` header), `:path` (the URI),
    /// then the headers in lowercase without the HTTP/1.1 connection fields.
    static func requestFields(_ head: HTTPRequestHead, scheme: String) -> [QPACKField] {
        var fields = [
            QPACKField(name: ":method", value: head.method.rawValue),
            QPACKField(name: ":scheme", value: scheme),
            QPACKField(name: ":authority", value: head.headers.first(name: "host") ?? ""),
            QPACKField(name: ":path", value: head.uri),
        ]
        fields.reserveCapacity(head.headers.count + 4)
        for (name, value) in head.headers {
            let name = name.lowercased()
            if name == "host" || connectionSpecific.contains(name) { continue }
            fields.append(QPACKField(name: name, value: value))
        }
        return fields
    }

    /// A response head from a decoded HEADERS section: exactly one `:status` and no other pseudo-header,
    /// first; valid names and values. Throws H3_MESSAGE_ERROR for a malformed section.
    static func responseHead(_ fields: [QPACKField]) throws(HTTP3Error) -> (HTTPResponseHead, contentLength: UInt64?) {
        var status: Int?
        var headers = HTTPHeaders()
        headers.reserveCapacity(fields.count)
        var contentLength: UInt64?
        for field in fields {
            guard isValidName(field.name), isValidValue(field.value) else { throw malformed("invalid field") }
            if field.name.utf8.first == UInt8(ascii: ":") {
                guard field.name == ":status", status == nil, headers.isEmpty,
                    field.value.utf8.count == 3, let code = Int(field.value), (100...599).contains(code)
                else { throw malformed("invalid or misplaced pseudo-header") }
                status = code
                continue
            }
            if connectionSpecific.contains(field.name) { throw malformed("connection-specific field") }
            if field.name == "content-length" {
                guard let length = UInt64(field.value), contentLength == nil || contentLength == length else {
                    throw malformed("invalid content-length")
                }
                contentLength = length
            }
            headers.add(name: field.name, value: field.value)
        }
        guard let status else { throw malformed("no :status") }
        return (
            HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: status), headers: headers),
            contentLength
        )
    }
}
