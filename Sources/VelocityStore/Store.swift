import Foundation
import VelocityConfig

/// Where a revision came from.
public enum RevisionSource: String, Sendable, Codable, CaseIterable {
    /// A change through the admin API (including `velocity reload`).
    case api
    /// A config file given to `velocity run --config`, or re-read by `--watch`.
    case file
    /// `POST /revisions/N/rollback`: a copy of revision N.
    case rollback
    /// The embedded default loaded into an empty store.
    case `default`
}

/// One stored config, without its document.
public struct RevisionSummary: Sendable, Equatable {
    public var number: Int64
    public var time: Date
    public var source: RevisionSource
    /// Who made it: the admin client's address, a file path, or the revision rolled back to.
    public var who: String
    /// Lowercase hex SHA-256 of the canonical serialization of the document.
    public var sha256: String

    public init(number: Int64, time: Date, source: RevisionSource, who: String, sha256: String) {
        self.number = number
        self.time = time
        self.source = source
        self.who = who
        self.sha256 = sha256
    }
}

/// One stored config with its document.
public struct Revision: Sendable, Equatable {
    public var summary: RevisionSummary
    public var document: JSONValue

    public var number: Int64 { summary.number }

    public init(summary: RevisionSummary, document: JSONValue) {
        self.summary = summary
        self.document = document
    }
}

/// A change to write as the next revision.
public struct RevisionDraft: Sendable {
    public var document: JSONValue
    public var sha256: String
    public var source: RevisionSource
    public var who: String

    public init(document: JSONValue, sha256: String, source: RevisionSource, who: String) {
        self.document = document
        self.sha256 = sha256
        self.source = source
        self.who = who
    }
}

public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The latest revision was not the one the writer based its change on.
    case conflict(expected: Int64?, actual: Int64?)
    /// A stored document could not be read back.
    case corrupt(revision: Int64, reason: String)

    public var description: String {
        switch self {
        case .conflict(let expected, let actual):
            "revision conflict: expected \(expected.map(String.init) ?? "none"), found \(actual.map(String.init) ?? "none")"
        case .corrupt(let revision, let reason): "revision \(revision) is unreadable: \(reason)"
        }
    }
}

/// The durable home of configs, certificates, keys and ACME state. Backends keep their storage details to
/// themselves; the runtime only speaks this protocol.
public protocol Store: Sendable {
    func latestRevision() throws -> Revision?
    func revision(_ number: Int64) throws -> Revision?
    /// Newest first, at most `limit`, only numbers below `before` when given.
    func revisions(limit: Int, before: Int64?) throws -> [RevisionSummary]
    /// Appends a revision atomically, unless the latest revision is no longer `basedOn`.
    func commit(_ draft: RevisionDraft, basedOn: Int64?) throws -> Revision
    /// Opaque records in a namespace (`certificates`, `keys`, `acme`), for the components that own them.
    func record(_ namespace: String, key: String) throws -> Data?
    func setRecord(_ namespace: String, key: String, value: Data?) throws
    /// Takes the lock `name` for `owner` until `expires`, unless another owner holds it and it has not expired;
    /// true when `owner` holds it now. Processes sharing the store use it so that only one of them does a piece
    /// of work (an ACME order for a name); an owner that dies loses the lock when it expires.
    func acquireLock(_ name: String, owner: String, until expires: Date) throws -> Bool
    /// Gives the lock up, if `owner` holds it.
    func releaseLock(_ name: String, owner: String) throws
}
