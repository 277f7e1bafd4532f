import Foundation
import GRDB
import VelocityConfig

/// The single-node store: one SQLite file in WAL mode, created with mode 0600 inside a 0700 directory.
public final class SQLiteStore: Store {
    public static let fileName = "velocity.sqlite"

    private let pool: DatabasePool
    public let path: String

    public convenience init(directory: URL) throws {
        try FileManager.default.createDirectory(
            at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try self.init(path: directory.appendingPathComponent(Self.fileName).path)
    }

    public init(path: String) throws {
        // SQLite gives the -wal and -shm files the database file's mode, so creating it 0600 covers all three.
        let descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        close(descriptor)
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            // FULL: a revision acknowledged to a client survives power loss too, not only a process crash.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        configuration.busyMode = .timeout(10)
        pool = try DatabasePool(path: path, configuration: configuration)
        self.path = path
        try Self.migrator.migrate(pool)
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "revisions") { table in
                table.primaryKey("number", .integer)
                table.column("time", .integer).notNull()  // milliseconds since 1970
                table.column("source", .text).notNull()
                table.column("who", .text).notNull()
                table.column("sha256", .text).notNull()
                table.column("document", .text).notNull()
            }
            try db.create(table: "records") { table in
                table.column("namespace", .text).notNull()
                table.column("key", .text).notNull()
                table.column("value", .blob).notNull()
                table.column("updated", .double).notNull()
                table.primaryKey(["namespace", "key"])
            }
        }
        migrator.registerMigration("v2-locks") { db in
            try db.create(table: "locks") { table in
                table.primaryKey("name", .text)
                table.column("owner", .text).notNull()
                table.column("expires", .double).notNull()  // seconds since 1970
            }
        }
        return migrator
    }

    public func latestRevision() throws -> Revision? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM revisions ORDER BY number DESC LIMIT 1").map(Self.revision)
        }
    }

    public func revision(_ number: Int64) throws -> Revision? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM revisions WHERE number = ?", arguments: [number]).map(
                Self.revision)
        }
    }

    public func revisions(limit: Int, before: Int64?) throws -> [RevisionSummary] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT number, time, source, who, sha256 FROM revisions
                    WHERE number < ? ORDER BY number DESC LIMIT ?
                    """,
                arguments: [before ?? Int64.max, limit]
            ).map(Self.summary)
        }
    }

    public func commit(_ draft: RevisionDraft, basedOn: Int64?) throws -> Revision {
        try pool.write { db in
            let latest = try Int64.fetchOne(db, sql: "SELECT MAX(number) FROM revisions")
            guard latest == basedOn else { throw StoreError.conflict(expected: basedOn, actual: latest) }
            let milliseconds = Int64((Date().timeIntervalSince1970 * 1000).rounded())
            let summary = RevisionSummary(
                number: (latest ?? 0) + 1, time: Self.date(milliseconds: milliseconds), source: draft.source,
                who: draft.who, sha256: draft.sha256)
            try db.execute(
                sql: "INSERT INTO revisions (number, time, source, who, sha256, document) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [
                    summary.number, milliseconds, summary.source.rawValue, summary.who,
                    summary.sha256, draft.document.serialized(),
                ])
            return Revision(summary: summary, document: draft.document)
        }
    }

    public func record(_ namespace: String, key: String) throws -> Data? {
        try pool.read { db in
            try Data.fetchOne(
                db, sql: "SELECT value FROM records WHERE namespace = ? AND key = ?", arguments: [namespace, key])
        }
    }

    public func setRecord(_ namespace: String, key: String, value: Data?) throws {
        try pool.write { db in
            if let value {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO records (namespace, key, value, updated) VALUES (?, ?, ?, ?)",
                    arguments: [namespace, key, value, Date().timeIntervalSince1970])
            } else {
                try db.execute(sql: "DELETE FROM records WHERE namespace = ? AND key = ?", arguments: [namespace, key])
            }
        }
    }

    public func acquireLock(_ name: String, owner: String, until expires: Date) throws -> Bool {
        try pool.write { db in
            // One write transaction: SQLite's writer lock makes the check and the take atomic across processes.
            if let row = try Row.fetchOne(db, sql: "SELECT owner, expires FROM locks WHERE name = ?", arguments: [name])
            {
                let holder: String = row["owner"]
                let until: Double = row["expires"]
                if holder != owner, until > Date().timeIntervalSince1970 { return false }
            }
            try db.execute(
                sql: "INSERT OR REPLACE INTO locks (name, owner, expires) VALUES (?, ?, ?)",
                arguments: [name, owner, expires.timeIntervalSince1970])
            return true
        }
    }

    public func releaseLock(_ name: String, owner: String) throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM locks WHERE name = ? AND owner = ?", arguments: [name, owner])
        }
    }

    /// `PRAGMA integrity_check`: "ok" for a sound database.
    public func integrityCheck() throws -> String {
        try pool.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") ?? "" }
    }

    private static func summary(_ row: Row) throws -> RevisionSummary {
        let number: Int64 = row["number"]
        let sourceName: String = row["source"]
        guard let source = RevisionSource(rawValue: sourceName) else {
            throw StoreError.corrupt(revision: number, reason: "unknown source \(sourceName)")
        }
        return RevisionSummary(
            number: number, time: date(milliseconds: row["time"]), source: source, who: row["who"],
            sha256: row["sha256"])
    }

    private static func date(milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }

    private static func revision(_ row: Row) throws -> Revision {
        let summary = try summary(row)
        let text: String = row["document"]
        do {
            return Revision(summary: summary, document: try JSONValue(parsing: text))
        } catch {
            throw StoreError.corrupt(revision: summary.number, reason: error.description)
        }
    }
}
