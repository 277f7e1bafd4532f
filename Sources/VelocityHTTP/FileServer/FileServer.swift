import HTTPTypes
import NIOCore
import VelocityConfig

/// A compiled `file_server` handler. `answer` touches the disk, so the data plane runs it off the event loop.
public final class FileServer: Sendable {
    private let root: String
    private let indexNames: [String]
    private let browse: Bool
    private let hidden: [NamePattern]
    private let serveDotfiles: Bool
    private let precompressed: [PrecompressedEncoding]
    /// A missing file passes the request on to the next handler.
    public let passThru: Bool

    /// Files up to this size are read with the lookup and sent in one write; larger ones are streamed.
    public static let inlineLimit = 64 * 1024

    init(_ config: FileServerConfig) {
        root = config.root
        indexNames = config.indexNames ?? FileServerConfig.defaultIndexNames
        browse = config.browse ?? false
        hidden = (config.hide ?? []).map(NamePattern.init)
        serveDotfiles = config.dotfiles == .serve
        precompressed = config.precompressed ?? []
        passThru = config.passThru ?? false
    }

    /// What a request gets: a complete response, a file to stream, or (for `pass_thru`) nothing.
    public enum Answer: Sendable {
        case respond(StaticResponse)
        /// `body` is nil for HEAD, which sends the headers (with the file's length) and nothing else.
        case file(head: StaticResponse, body: FileBody?, length: Int)
        case passThru
    }

    /// Looks the request up under the root. Blocks on the file system.
    public func answer(_ request: RoutingRequest) -> Answer {
        guard request.method == .get || request.method == .head else {
            var response = StaticResponse(status: .methodNotAllowed, body: "405 Method Not Allowed\n")
            response.headerFields[.allow] = "GET, HEAD"
            return .respond(response)
        }
        guard let path = RequestPath(request.path) else {
            return .respond(StaticResponse(status: .badRequest, body: "400 Bad Request: not a file path\n"))
        }
        guard !path.segments.contains(where: isHidden), let base = OpenFile(directory: root),
            var file = OpenFile(beneath: base.descriptor, path.relative)
        else { return missing }
        var name = path.segments.last ?? ""
        var relative = path.relative
        if file.isDirectory {
            guard path.trailingSlash else {
                let target = request.originalTarget
                let query = target.firstIndex(of: "?").map { target[$0...] } ?? ""
                let location = String(target[..<(target.firstIndex(of: "?") ?? target.endIndex)]) + "/" + query
                return .respond(StaticResponse(redirectTo: location))
            }
            let directory = path.relative
            guard
                let (index, indexName) = indexNames.lazy.compactMap({ indexName in
                    OpenFile(beneath: base.descriptor, directory + "/" + indexName).flatMap {
                        $0.isRegular ? ($0, indexName) : nil
                    }
                }).first
            else {
                guard browse else { return missing }
                return .respond(DirectoryListing.response(file, path: request.path, isVisible: { !isHidden($0) }))
            }
            file = index
            name = indexName
            relative = directory + "/" + indexName
        } else if path.trailingSlash {
            // A file named as a directory (`/notes.txt/`) is not there, as on any file system.
            return missing
        }
        guard file.isRegular else { return missing }
        var head = StaticResponse(status: .ok, body: "")
        head.headerFields[.contentType] = MediaType.of(fileName: name)
        var variant: PrecompressedEncoding?
        if !precompressed.isEmpty {
            head.headerFields[.vary] = "Accept-Encoding"
            if let accepted = request.request.headerFields[.acceptEncoding] {
                for encoding in precompressed
                where AcceptEncoding.quality(of: encoding.rawValue, in: accepted) > 0 {
                    guard let sibling = OpenFile(beneath: base.descriptor, relative + encoding.fileSuffix),
                        sibling.isRegular
                    else { continue }
                    file = sibling
                    variant = encoding
                    head.headerFields[.contentEncoding] = encoding.rawValue
                    break
                }
            }
        }
        return respond(with: file, head: head, validators: Validators(file, variant: variant?.rawValue), request)
    }

    private func respond(
        with file: OpenFile, head: StaticResponse, validators: Validators, _ request: RoutingRequest
    ) -> Answer {
        var head = head
        head.headerFields[.eTag] = validators.etag
        head.headerFields[.lastModified] = validators.lastModified
        head.headerFields[.acceptRanges] = "bytes"
        let fields = request.request.headerFields
        switch validators.evaluate(fields) {
        case .failed:
            return .respond(StaticResponse(status: .preconditionFailed, body: "412 Precondition Failed\n"))
        case .notModified:
            head.status = .notModified
            return .respond(head)
        case .proceed:
            break
        }
        var first = 0
        var length = file.size
        if request.method == .get, validators.rangeApplies(fields) {
            switch ByteRange(fields[.range], size: file.size) {
            case .whole:
                break
            case .range(let start, let last):
                head.status = .partialContent
                head.headerFields[.contentRange] = "bytes \(start)-\(last)/\(file.size)"
                first = start
                length = last - start + 1
            case .unsatisfiable:
                var response = StaticResponse(status: .rangeNotSatisfiable, body: "416 Range Not Satisfiable\n")
                response.headerFields[.contentRange] = "bytes */\(file.size)"
                return .respond(response)
            }
        }
        let body = FileBody(file: file, offset: first, length: length)
        if request.method == .head { return .file(head: head, body: nil, length: length) }
        if length <= Self.inlineLimit, let bytes = body.readAll() {
            head.body = bytes
            return .respond(head)
        }
        return .file(head: head, body: body, length: length)
    }

    private var missing: Answer {
        passThru ? .passThru : .respond(Self.notFound)
    }

    private static let notFound = StaticResponse(status: .notFound, body: "404 Not Found\n")

    /// Dot names other than `.well-known` (unless dotfiles are served), and names matching `hide`.
    private func isHidden(_ name: String) -> Bool {
        if name.hasPrefix("."), !serveDotfiles, name != ".well-known" { return true }
        return hidden.contains { $0.matches(name) }
    }
}

/// The part of a file a response sends.
public struct FileBody: Sendable {
    public let file: OpenFile
    public let offset: Int
    public let length: Int

    /// The whole range in one buffer; nil if reading fails or the file shrank meanwhile. Blocks.
    func readAll() -> ByteBuffer? {
        var buffer = ByteBuffer()
        while buffer.readableBytes < length {
            let wanted = length - buffer.readableBytes
            guard let read = try? file.read(into: &buffer, at: offset + buffer.readableBytes, count: wanted),
                read > 0
            else { return nil }
        }
        return buffer
    }
}

/// A `hide` entry: an exact name, or one `*` standing for any run of characters.
struct NamePattern: Sendable {
    private let prefix: String
    private let suffix: String?

    init(_ pattern: String) {
        if let star = pattern.firstIndex(of: "*") {
            prefix = String(pattern[..<star])
            suffix = String(pattern[pattern.index(after: star)...])
        } else {
            prefix = pattern
            suffix = nil
        }
    }

    func matches(_ name: String) -> Bool {
        guard let suffix else { return name == prefix }
        return name.count >= prefix.count + suffix.count && name.hasPrefix(prefix) && name.hasSuffix(suffix)
    }
}
