import Foundation
import Testing
import VelocityStore
import X509

@testable import VelocityACME

@Suite struct ChallengeResponderTests {
    private func store() throws -> SQLiteStore {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("acme-\(UUID().uuidString)")
        return try SQLiteStore(directory: directory)
    }

    @Test func anyResponderOnTheStoreAnswersWhatAnotherProvisioned() throws {
        let shared = try store()
        let issuing = ACMEChallengeResponder(store: shared)
        let answering = ACMEChallengeResponder(store: shared)
        try issuing.provision(.http01, name: "a.test", token: "tok-1", keyAuthorization: "tok-1.thumb")
        try issuing.provision(.tlsALPN01, name: "a.test", token: "tok-2", keyAuthorization: "tok-2.thumb")
        #expect(answering.httpKeyAuthorization(token: "tok-1") == "tok-1.thumb")
        #expect(answering.httpKeyAuthorization(token: "tok-2") == nil)
        let credential = try #require(answering.tlsALPNCertificate(for: "a.test"))
        #expect(credential.names == ["a.test"])
        #expect(answering.tlsALPNCertificate(for: "a.test") === credential)  // built once

        issuing.remove(.http01, name: "a.test", token: "tok-1")
        issuing.remove(.tlsALPN01, name: "a.test", token: "tok-2")
        #expect(answering.httpKeyAuthorization(token: "tok-1") == nil)
        #expect(answering.tlsALPNCertificate(for: "a.test") == nil)
    }

    @Test func aNewChallengeForTheSameNameGetsANewCertificate() throws {
        let responder = ACMEChallengeResponder(store: try store())
        try responder.provision(.tlsALPN01, name: "a.test", token: "t1", keyAuthorization: "t1.k")
        let first = try #require(responder.tlsALPNCertificate(for: "a.test"))
        try responder.provision(.tlsALPN01, name: "a.test", token: "t2", keyAuthorization: "t2.k")
        let second = try #require(responder.tlsALPNCertificate(for: "a.test"))
        #expect(first !== second)
    }

    @Test func accountsAreKeptPerCAAndContact() throws {
        let storage = CertificateStorage(store: try store())
        let first = try storage.account(directory: "https://ca.test/dir", email: "a@b.test")
        #expect(first.url == nil)
        var saved = first
        saved.url = "https://ca.test/acct/1"
        try storage.saveAccount(saved, directory: "https://ca.test/dir", email: "a@b.test")
        let again = try storage.account(directory: "https://ca.test/dir", email: "a@b.test")
        #expect(again.keyPEM == first.keyPEM)
        #expect(again.url == "https://ca.test/acct/1")
        #expect(try storage.account(directory: "https://other.test/dir", email: "a@b.test").keyPEM != first.keyPEM)
    }
}
