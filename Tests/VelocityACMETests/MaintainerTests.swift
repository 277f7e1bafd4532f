import Foundation
import Logging
import NIOPosix
import Synchronization
import Testing
import VelocityStore

@testable import VelocityACME

@Suite struct MaintainerTests {
    /// Another process holds the name's lock: this one never calls the CA (it is unreachable here), waits
    /// without an error, and serves the certificate the other one stores.
    @Test func aNameLockedByAnotherProcessIsNotOrderedAndItsCertificateIsTaken() async throws {
        let store = try SQLiteStore(
            directory: FileManager.default.temporaryDirectory.appendingPathComponent("acme-\(UUID().uuidString)"))
        #expect(try store.acquireLock("acme/a.test", owner: "other process", until: Date() + 60))
        let publications = Counter()
        let maintainer = CertificateMaintainer(
            store: store, responder: ACMEChallengeResponder(store: store), group: MultiThreadedEventLoopGroup.singleton,
            logger: Logger(label: "test")
        ) { publications.add() }
        let unreachable = ACMEIssuerSettings(
            directoryURL: "https://127.0.0.1:1/dir", email: nil, externalAccount: nil, challenges: [.http01],
            keyType: .p256, trustedRootsPEM: nil)
        await maintainer.update([ManagedName(name: "a.test", issuers: [unreachable])])
        try await Task.sleep(for: .milliseconds(500))
        let waiting = try #require(await maintainer.status().first)
        #expect(waiting.state == .pending)
        #expect(waiting.lastError == nil)

        let made = try TLSALPNCertificate.make(name: "a.test", keyAuthorization: "x")
        let stored = try IssuedCertificate(
            chainPEM: made.certificatePEM, privateKeyPEM: made.privateKeyPEM, issuer: "https://ca.test/dir")
        try CertificateStorage(store: store).save(stored, for: "a.test")
        try store.releaseLock("acme/a.test", owner: "other process")
        let deadline = Date() + 10
        while await maintainer.status().first?.state != .valid, Date() < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        let taken = try #require(await maintainer.status().first)
        #expect(taken.state == .valid)
        #expect(taken.issuer == "https://ca.test/dir")
        #expect(publications.value == 1)
        #expect(try store.acquireLock("acme/a.test", owner: "other process", until: Date() + 60))  // released again
        await maintainer.stop()
    }
}

private final class Counter: Sendable {
    private let count = Mutex(0)

    func add() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
