import Foundation
import Testing
import VelocityConfig
import VelocityStore

@Suite struct SQLiteStoreTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("velocity-store-\(UUID().uuidString)")

    private func draft(_ body: String, source: RevisionSource = .api) -> RevisionDraft {
        RevisionDraft(document: ["body": .string(body)], sha256: "sha-\(body)", source: source, who: "test")
    }

    @Test func commitsNumberedRevisionsAndReadsThemBack() throws {
        let store = try SQLiteStore(directory: directory)
        #expect(try store.latestRevision() == nil)
        let first = try store.commit(draft("a", source: .default), basedOn: nil)
        let second = try store.commit(draft("b"), basedOn: first.number)
        #expect((first.number, second.number) == (1, 2))
        #expect(try store.latestRevision() == second)
        #expect(try store.revision(1)?.document == ["body": "a"])
        #expect(try store.revision(1)?.summary.source == .default)
        #expect(try store.revisions(limit: 10, before: nil).map(\.number) == [2, 1])
        #expect(try store.revisions(limit: 10, before: 2).map(\.number) == [1])
    }

    @Test func refusesACommitBasedOnAStaleRevision() throws {
        let store = try SQLiteStore(directory: directory)
        let first = try store.commit(draft("a"), basedOn: nil)
        _ = try store.commit(draft("b"), basedOn: first.number)
        #expect(throws: StoreError.conflict(expected: 1, actual: 2)) { try store.commit(draft("c"), basedOn: 1) }
        #expect(try store.revisions(limit: 10, before: nil).count == 2)
    }

    @Test func survivesReopening() throws {
        do {
            let store = try SQLiteStore(directory: directory)
            _ = try store.commit(draft("a"), basedOn: nil)
            try store.setRecord("certificates", key: "example.com", value: Data("pem".utf8))
        }
        let reopened = try SQLiteStore(directory: directory)
        #expect(try reopened.latestRevision()?.document == ["body": "a"])
        #expect(try reopened.record("certificates", key: "example.com") == Data("pem".utf8))
        try reopened.setRecord("certificates", key: "example.com", value: nil)
        #expect(try reopened.record("certificates", key: "example.com") == nil)
        #expect(try reopened.integrityCheck() == "ok")
    }

    @Test func createsThePrivateFilesOnlyTheOwnerCanRead() throws {
        let store = try SQLiteStore(directory: directory)
        _ = try store.commit(draft("a"), basedOn: nil)
        let attributes = try FileManager.default.attributesOfItem(atPath: store.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let directoryAttributes = try FileManager.default.attributesOfItem(atPath: directory.path)
        #expect((directoryAttributes[.posixPermissions] as? Int) == 0o700)
        #expect(FileManager.default.fileExists(atPath: store.path + "-wal"))
    }

    @Test func resolvesTheDataDirectory() {
        #expect(DataDirectory.resolve(flag: "/x", environment: ["VELOCITY_DATA_DIR": "/y"]).path == "/x")
        #expect(DataDirectory.resolve(flag: nil, environment: ["VELOCITY_DATA_DIR": "/y"]).path == "/y")
        #expect(DataDirectory.resolve(flag: nil, environment: ["XDG_DATA_HOME": "/z"]).path == "/z/velocity")
        #expect(DataDirectory.resolve(flag: nil, environment: ["HOME": "/h"]).path == "/h/.local/share/velocity")
    }

    @Test func aLockIsHeldByOneOwnerAcrossStoresUntilReleasedOrExpired() throws {
        let first = try SQLiteStore(directory: directory)
        let second = try SQLiteStore(directory: directory)  // another process on the same file
        let later = Date().addingTimeInterval(60)
        #expect(try first.acquireLock("acme/a.test", owner: "one", until: later))
        #expect(try !second.acquireLock("acme/a.test", owner: "two", until: later))
        #expect(try first.acquireLock("acme/a.test", owner: "one", until: later))  // extending is fine
        #expect(try second.acquireLock("acme/b.test", owner: "two", until: later))
        try second.releaseLock("acme/a.test", owner: "two")  // not its lock: no effect
        #expect(try !second.acquireLock("acme/a.test", owner: "two", until: later))
        try first.releaseLock("acme/a.test", owner: "one")
        #expect(try second.acquireLock("acme/a.test", owner: "two", until: Date().addingTimeInterval(-1)))
        #expect(try first.acquireLock("acme/a.test", owner: "one", until: later))  // the other's had expired
    }
}
