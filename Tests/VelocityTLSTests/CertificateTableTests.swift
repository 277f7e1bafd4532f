import Foundation
import Testing

@testable import VelocityTLS

@Suite struct CertificateTableTests {
    private static let authority = try! InternalCA.create()

    private func credential(_ names: [String]) throws -> TLSCredential {
        let bundle = try Self.authority.issue(for: names)
        return try TLSCredential(certificateChainPEM: bundle.certificateChainPEM, privateKeyPEM: bundle.privateKeyPEM)
    }

    @Test func readsNamesAndIssuerFromTheLeaf() throws {
        let leaf = try credential(["a.example", "*.b.example", "127.0.0.1", "::1"])
        #expect(leaf.names == ["a.example", "*.b.example", "127.0.0.1", "::1"])
        #expect(leaf.issuer.contains("Velocity Local Authority"))
    }

    @Test func refusesAKeyOfAnotherCertificate() throws {
        let one = try Self.authority.issue(for: ["one.example"])
        let other = try Self.authority.issue(for: ["other.example"])
        #expect(throws: TLSCredentialError.self) {
            try TLSCredential(certificateChainPEM: one.certificateChainPEM, privateKeyPEM: other.privateKeyPEM)
        }
        #expect(throws: TLSCredentialError.self) {
            try TLSCredential(certificateChainPEM: "not pem", privateKeyPEM: one.privateKeyPEM)
        }
    }

    @Test func picksExactThenWildcardThenDefault() throws {
        let exact = try credential(["www.b.example"])
        let wildcard = try credential(["*.b.example"])
        let fallback = try credential(["localhost"])
        let table = CertificateTable([exact, wildcard], default: fallback)
        #expect(table.credential(for: "www.b.example") === exact)
        #expect(table.credential(for: "api.b.example") === wildcard)
        #expect(table.credential(for: "x.api.b.example") === fallback)
        #expect(table.credential(for: nil) === fallback)
        #expect(table.credentials.count == 2)
    }

    @Test func earlierCertificatesWinSharedNames() throws {
        let first = try credential(["a.example"])
        let second = try credential(["a.example", "b.example"])
        let table = CertificateTable([first, second])
        #expect(table.credential(for: "a.example") === first)
        #expect(table.credential(for: "b.example") === second)
        #expect(CertificateTable([]).isEmpty)
    }
}

@Suite struct ALPNTests {
    private func select(_ offered: [String], _ preferring: [String]) -> String? {
        let wire = offered.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
        return wire.withUnsafeBufferPointer { buffer in
            ALPN.select(from: buffer, preferring: preferring.map { Array($0.utf8) }).map {
                String(decoding: $0, as: UTF8.self)
            }
        }
    }

    @Test func theServerOrderWins() {
        #expect(select(["http/1.1", "h2"], ["h2", "http/1.1"]) == "h2")
        #expect(select(["http/1.1"], ["h2", "http/1.1"]) == "http/1.1")
        #expect(select(["acme-tls/1"], ["h2", "http/1.1"]) == nil)
    }

    @Test func refusesMalformedLists() {
        let truncated: [UInt8] = [5, 0x68, 0x32]
        #expect(truncated.withUnsafeBufferPointer { ALPN.select(from: $0, preferring: [Array("h2".utf8)]) } == nil)
        let empty: [UInt8] = [0]
        #expect(empty.withUnsafeBufferPointer { ALPN.select(from: $0, preferring: [Array("h2".utf8)]) } == nil)
    }
}
