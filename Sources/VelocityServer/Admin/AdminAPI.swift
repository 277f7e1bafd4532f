import Foundation
import NIOCore
import NIOHTTP1
import VelocityConfig
import VelocityStore
import VelocityTLS

/// The admin API's endpoints (docs/admin-api.md). Access checks have already passed when a request gets here.
struct AdminAPI: Sendable {
    let coordinator: ConfigCoordinator
    let metrics: AdminMetrics
    let requestStop: @Sendable () -> Void

    private var store: any Store { coordinator.store }
    private var snapshots: SnapshotBox { coordinator.snapshots }

    func handle(_ request: AdminRequest) async -> AdminResponse {
        do {
            return try await route(request)
        } catch let error as AdminError {
            return error.response
        } catch {
            return AdminError(.internalServerError, "internal error: \(error)").response
        }
    }

    private func route(_ request: AdminRequest) async throws -> AdminResponse {
        let target = AdminTarget(uri: request.uri)
        let segments = target.segments
        switch segments.first {
        case "config":
            return try await config(request, .path(Array(segments.dropFirst())), splice: target.splice)
        case "id" where segments.count >= 2:
            return try await config(request, .id(segments[1], Array(segments.dropFirst(2))), splice: target.splice)
        case "load" where segments.count == 1:
            try allow(request, .POST)
            let document = try parseBody(request)
            return try await apply(request) { _ in document }
        case "adapt" where segments.count == 1:
            try allow(request, .POST)
            let document = try parseBody(request)
            do {
                _ = try ConfigValidator.validate(document, context: await coordinator.validationContext(for: document))
            } catch let error as ConfigError {
                throw AdminError(error)
            }
            return AdminResponse(json: ["result": document, "warnings": []])
        case "revisions":
            return try await revisions(request, Array(segments.dropFirst()), query: target.query)
        case "certificates" where segments.count == 1:
            try allow(request, .GET)
            return AdminResponse(json: .array(try await certificates()))
        case "upstreams" where segments.count == 1:
            try allow(request, .GET)
            return AdminResponse(json: .array(snapshots.load().upstreams.map(\.status)))
        case "pki" where segments == ["pki", "ca", "local"]:
            try allow(request, .GET)
            let root = try await coordinator.rootCertificatePEM()
            return AdminResponse(json: [
                "id": "local", "name": "Velocity Local Authority", "root_certificate": .string(root),
            ])
        case "metrics" where segments.count == 1:
            try allow(request, .GET)
            let snapshot = snapshots.load()
            return AdminResponse(
                contentType: "text/plain; version=0.0.4",
                body: metrics.exposition(revision: snapshot.revision, certificates: snapshot.certificates.credentials))
        case "health" where segments.count == 1:
            try allow(request, .GET)
            let snapshot = snapshots.load()
            return AdminResponse(
                json: ["status": "ok", "revision": .integer(snapshot.revision)], revision: snapshot.revision)
        case "stop" where segments.count == 1:
            try allow(request, .POST)
            var response = AdminResponse(json: ["status": "stopping"])
            response.afterWrite = requestStop
            return response
        default:
            throw AdminError(.notFound, "no such endpoint: \(target.path)")
        }
    }

    /// What handshakes present, then every managed name with its ACME state; the certificate ACME issued for
    /// a managed name is shown with that name's state rather than on its own.
    private func certificates() async throws -> [JSONValue] {
        let table = snapshots.load().certificates
        let presented = table.credentials.filter { credential in
            !(credential.names.count == 1 && table.managedNames.contains(credential.names[0]))
        }
        let managed = await coordinator.managedCertificates().map { status -> JSONValue in
            let served = table.credentials.first { $0.names == [status.name] }
            func date(_ date: Date?) -> JSONValue { date.map { .string($0.formatted(.iso8601)) } ?? .null }
            return [
                "names": [.string(status.name)],
                "managed": true,
                "state": .string(status.state.rawValue),
                "issuer": served.map { .string($0.issuer) } ?? .null,
                "ca": status.issuer.map { .string($0) } ?? .null,
                "not_after": date(served?.notAfter ?? status.notAfter),
                "renewal_at": date(status.renewalTime),
                "renewal_window": status.renewalWindow.map {
                    ["start": date($0.lowerBound), "end": date($0.upperBound)]
                } ?? .null,
                "last_error": status.lastError.map { .string($0) } ?? .null,
                "ocsp": status.ocsp.map { .string($0) } ?? .null,
                "ocsp_next_update": date(status.ocspNextUpdate),
                "next_attempt": date(status.nextAttempt),
            ]
        }
        return presented.map(\.json) + managed
    }

    /// `/config/...` and `/id/...`. The address is resolved inside the change, against the document being
    /// edited, so an `@id` cannot move between lookup and edit.
    private func config(_ request: AdminRequest, _ address: ConfigAddress, splice: Bool) async throws -> AdminResponse {
        if splice, request.method != .POST {
            throw AdminError(.badRequest, "\"...\" is only meaningful with POST")
        }
        switch request.method {
        case .GET:
            let snapshot = snapshots.load()
            do {
                let pointer = try address.resolve(in: snapshot.document)
                guard let value = snapshot.document.value(at: pointer) else {
                    throw JSONEditError(.notFound, at: pointer, "no value at this path")
                }
                return AdminResponse(json: value, revision: snapshot.revision)
            } catch let error as JSONEditError {
                throw AdminError(error)
            }
        case .POST:
            let value = try parseBody(request)
            return try await apply(request) {
                try $0.applying(.post(value, splice: splice), at: address.resolve(in: $0))
            }
        case .PUT:
            let value = try parseBody(request)
            return try await apply(request) { try $0.applying(.put(value), at: address.resolve(in: $0)) }
        case .PATCH:
            let body = try parseBody(request, patchTypes: true)
            switch request.contentType {
            case Self.jsonPatchType:
                return try await apply(request) { document in
                    let pointer = try address.resolve(in: document)
                    guard let target = document.value(at: pointer) else {
                        throw JSONEditError(.notFound, at: pointer, "no value at this path")
                    }
                    let patched: JSONValue
                    do {
                        patched = try target.applyingJSONPatch(body)
                    } catch let error as JSONEditError {
                        throw error.relative(to: pointer)
                    }
                    return try document.applying(.patch(patched), at: pointer)
                }
            case Self.mergePatchType:
                return try await apply(request) { document in
                    let pointer = try address.resolve(in: document)
                    let merged = (document.value(at: pointer) ?? .null).applyingMergePatch(body)
                    return try document.applying(.patch(merged), at: pointer)
                }
            default:
                return try await apply(request) { try $0.applying(.patch(body), at: address.resolve(in: $0)) }
            }
        case .DELETE:
            return try await apply(request) { try $0.applying(.delete, at: address.resolve(in: $0)) }
        default:
            throw AdminError.methodNotAllowed(request.method, allowed: [.GET, .POST, .PUT, .PATCH, .DELETE])
        }
    }

    private func revisions(_ request: AdminRequest, _ rest: [String], query: [String: String]) async throws
        -> AdminResponse
    {
        switch rest.count {
        case 0:
            try allow(request, .GET)
            let limit = try number(query["limit"], name: "limit", range: 1...1000) ?? 50
            let before = try number(query["before"], name: "before", range: 1...Int64.max)
            let list = try store.revisions(limit: limit, before: before)
            return AdminResponse(json: .array(list.map { .object($0.json) }), revision: snapshots.load().revision)
        case 1:
            try allow(request, .GET)
            let revision = try storedRevision(rest[0])
            var json = revision.summary.json
            json["config"] = revision.document
            return AdminResponse(json: .object(json), revision: revision.number)
        case 2 where rest[1] == "rollback":
            try allow(request, .POST)
            let revision = try storedRevision(rest[0])
            return try await apply(request, source: .rollback, who: "revision \(revision.number)") { _ in
                revision.document
            }
        default:
            throw AdminError(.notFound, "no such endpoint: /revisions/\(rest.joined(separator: "/"))")
        }
    }

    /// A query parameter that must be a whole number in `range` when present.
    private func number<N: FixedWidthInteger>(_ text: String?, name: String, range: ClosedRange<N>) throws -> N? {
        guard let text else { return nil }
        guard let value = N(text), range.contains(value) else {
            throw AdminError(
                .badRequest,
                "query parameter \"\(name)\" must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    private func storedRevision(_ text: String) throws -> Revision {
        guard let number = Int64(text), let revision = try store.revision(number) else {
            throw AdminError(.notFound, "no revision \(text)")
        }
        return revision
    }

    private func apply(
        _ request: AdminRequest,
        source: RevisionSource = .api,
        who: String? = nil,
        _ edit: @escaping @Sendable (JSONValue) throws -> JSONValue
    ) async throws -> AdminResponse {
        let ifMatch = try request.ifMatch
        do {
            let outcome = try await coordinator.change(
                source: source, who: who ?? request.client, ifMatch: ifMatch, force: request.forcesRevalidation,
                edit)
            switch outcome {
            case .applied(let snapshot):
                metrics.record(.applied)
                return AdminResponse(
                    json: ["status": "applied", "revision": .integer(snapshot.revision)], revision: snapshot.revision)
            case .unchanged(let snapshot):
                metrics.record(.unchanged)
                return AdminResponse(
                    json: ["status": "unchanged", "revision": .integer(snapshot.revision)], revision: snapshot.revision)
            }
        } catch {
            metrics.record(.rejected)
            switch error {
            case .stale(let current):
                throw AdminError(
                    .preconditionFailed,
                    "If-Match names revision \(ifMatch ?? 0) but the current revision is \(current)",
                    details: ["revision": .integer(current)])
            case .edit(let error): throw AdminError(error)
            case .invalid(let error): throw AdminError(error)
            case .listen(let error):
                throw AdminError(
                    .badRequest, error.description, details: ["address": .string(error.address.description)])
            case .store(let error): throw AdminError(.internalServerError, "the store refused the change: \(error)")
            }
        }
    }

    /// The request's JSON body. Plain JSON is accepted everywhere; the patch media types only where they mean
    /// something (PATCH), so a patch sent to the wrong verb is refused rather than stored as a value.
    private func parseBody(_ request: AdminRequest, patchTypes: Bool = false) throws -> JSONValue {
        guard request.body.readableBytes > 0 else { throw AdminError(.badRequest, "a JSON body is required") }
        let type = request.contentType
        let accepted = ["", "application/json"] + (patchTypes ? [Self.jsonPatchType, Self.mergePatchType] : [])
        guard accepted.contains(type) else {
            throw AdminError(
                .unsupportedMediaType,
                "unsupported Content-Type \"\(type)\": send \(accepted.dropFirst().joined(separator: " or "))",
                details: ["content_type": .string(type)])
        }
        do {
            return try JSONValue(parsing: request.body.readableBytesView)
        } catch {
            throw AdminError(error)
        }
    }

    private static let jsonPatchType = "application/json-patch+json"
    private static let mergePatchType = "application/merge-patch+json"

    private func allow(_ request: AdminRequest, _ method: HTTPMethod) throws {
        guard request.method == method else {
            throw AdminError.methodNotAllowed(request.method, allowed: [method])
        }
    }
}

extension AdminRequest {
    /// The media type without parameters, lowercased.
    var contentType: String {
        (headers.first(name: "content-type") ?? "").split(separator: ";").first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        } ?? ""
    }

    /// `Cache-Control: must-revalidate` makes an identical config a new revision anyway.
    var forcesRevalidation: Bool {
        headers[canonicalForm: "cache-control"].contains { $0.lowercased() == "must-revalidate" }
    }

    /// The revision in `If-Match` (`"12"` or `12`); nil when absent or `*`.
    var ifMatch: Int64? {
        get throws {
            guard let raw = headers.first(name: "if-match")?.trimmingCharacters(in: .whitespaces), raw != "*" else {
                return nil
            }
            var text = Substring(raw)
            if text.hasPrefix("W/") { text = text.dropFirst(2) }
            if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 { text = text.dropFirst().dropLast() }
            guard let revision = Int64(text) else {
                throw AdminError(.badRequest, "If-Match must be a revision number such as \"12\"")
            }
            return revision
        }
    }
}

extension TLSCredential {
    var json: JSONValue {
        [
            "names": .array(names.map { .string($0) }),
            "issuer": .string(issuer),
            "not_after": .string(notAfter.formatted(.iso8601)),
        ]
    }
}

extension RevisionSummary {
    var json: [String: JSONValue] {
        [
            "number": .integer(number),
            "time": .string(time.formatted(.iso8601)),
            "source": .string(source.rawValue),
            "who": .string(who),
            "sha256": .string(sha256),
        ]
    }
}

/// What `/config/<path>` or `/id/<id>/<path>` names in a document.
enum ConfigAddress: Sendable {
    case path([String])
    case id(String, [String])

    func resolve(in document: JSONValue) throws(JSONEditError) -> JSONPointer {
        switch self {
        case .path(let tokens):
            return JSONPointer(tokens: tokens)
        case .id(let id, let rest):
            guard let base = (try? IDIndex(document))?.pointers[id] else {
                throw JSONEditError(.notFound, at: .root, "no object has @id \"\(id)\"")
            }
            return JSONPointer(tokens: base.tokens + rest)
        }
    }
}

extension JSONEditError {
    /// The same error with its pointer made absolute, for a patch applied to the value at `base`.
    fileprivate func relative(to base: JSONPointer) -> JSONEditError {
        JSONEditError(kind, at: JSONPointer(tokens: base.tokens + pointer.tokens), message)
    }
}

/// The path of an admin request split into percent-decoded segments; a final `...` asks POST to splice.
struct AdminTarget {
    var path: String
    var segments: [String]
    var splice: Bool
    var query: [String: String]

    init(uri: String) {
        var uri = Substring(uri)
        // Absolute form (RFC 9112 §3.2.2): "http://host:port/path" names the same resource as "/path".
        if let scheme = uri.firstRange(of: "://"), !uri.hasPrefix("/") {
            let afterAuthority = uri[scheme.upperBound...]
            uri = afterAuthority.firstIndex(of: "/").map { afterAuthority[$0...] } ?? "/"
        }
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = String(parts[0])
        var segments = path.split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
        splice = segments.last == "..."
        if splice { segments.removeLast() }
        self.segments = segments
        var query: [String: String] = [:]
        if parts.count == 2 {
            for pair in parts[1].split(separator: "&") {
                let keyValue = pair.split(separator: "=", maxSplits: 1)
                if keyValue.count == 2 { query[String(keyValue[0])] = String(keyValue[1]).removingPercentEncoding }
            }
        }
        self.query = query
    }
}
