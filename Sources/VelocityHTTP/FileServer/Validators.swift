import HTTPTypes

/// A file's validators (RFC 9110 §8.8) and the conditional and range decisions made with them.
struct Validators: Sendable {
    /// Strong: it changes whenever the modification time or size does, and differs per encoded variant.
    let etag: String
    let lastModified: String
    let modifiedSeconds: Int

    init(_ file: OpenFile, variant: String?) {
        let stamp = String(file.modified.seconds, radix: 16) + "." + String(file.modified.nanoseconds, radix: 16)
        etag = "\"" + stamp + "-" + String(file.size, radix: 16) + (variant.map { "-" + $0 } ?? "") + "\""
        lastModified = HTTPDate.format(file.modified.seconds)
        modifiedSeconds = file.modified.seconds
    }

    enum Precondition {
        case proceed
        case notModified
        case failed
    }

    /// RFC 9110 §13.2.2, in its order: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since.
    func evaluate(_ fields: HTTPFields) -> Precondition {
        if let ifMatch = fields[.ifMatch] {
            if !Self.list(ifMatch, contains: etag, weak: false) { return .failed }
        } else if let since = fields[.ifUnmodifiedSince].flatMap(HTTPDate.parse), modifiedSeconds > since {
            return .failed
        }
        if let ifNoneMatch = fields[.ifNoneMatch] {
            if Self.list(ifNoneMatch, contains: etag, weak: true) { return .notModified }
        } else if let since = fields[.ifModifiedSince].flatMap(HTTPDate.parse), modifiedSeconds <= since {
            return .notModified
        }
        return .proceed
    }

    /// Whether a Range may be honoured: always without If-Range, else only if it names this exact version.
    func rangeApplies(_ fields: HTTPFields) -> Bool {
        guard let ifRange = fields[.ifRange] else { return true }
        if ifRange.hasPrefix("\"") { return ifRange == etag }
        return ifRange == lastModified
    }

    private static func list(_ header: String, contains etag: String, weak: Bool) -> Bool {
        for item in header.split(separator: ",") {
            var tag = item.trimmingCharacters(where: { $0 == " " || $0 == "\t" })
            if tag == "*" { return true }
            if tag.hasPrefix("W/") {
                guard weak else { continue }
                tag = tag.dropFirst(2)
            }
            if tag == etag { return true }
        }
        return false
    }
}

/// One byte range of a `Range: bytes=…` header (RFC 9110 §14.2).
enum ByteRange: Equatable {
    /// No usable single range: send the whole file (several ranges are allowed to be answered this way).
    case whole
    case range(first: Int, last: Int)
    case unsatisfiable

    init(_ header: String?, size: Int) {
        guard let header, header.count > 6, header.prefix(6).lowercased() == "bytes=" else {
            self = .whole
            return
        }
        let spec = header.dropFirst(6).trimmingCharacters(where: { $0 == " " })
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard !spec.contains(","), parts.count == 2 else {
            self = .whole
            return
        }
        switch (Int(parts[0]), Int(parts[1])) {
        case (nil, let suffix?) where parts[0].isEmpty && suffix >= 0:
            self = suffix == 0 || size == 0 ? .unsatisfiable : .range(first: max(0, size - suffix), last: size - 1)
        case (let first?, nil) where parts[1].isEmpty && first >= 0:
            self = first >= size ? .unsatisfiable : .range(first: first, last: size - 1)
        case (let first?, let last?) where first >= 0 && first <= last:
            self = first >= size ? .unsatisfiable : .range(first: first, last: min(last, size - 1))
        default:
            self = .whole
        }
    }
}
