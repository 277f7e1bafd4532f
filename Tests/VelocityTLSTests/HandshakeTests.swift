import CNIOBoringSSL
import NIOCore
import Testing

@testable import VelocityTLS

/// Full handshakes between a BoringSSL client and the server engine, over memory, to check what the engine
/// presents and negotiates.
@Suite struct HandshakeTests {
    private static let authority = try! InternalCA.create()

    private func credential(_ names: [String]) throws -> TLSCredential {
        let bundle = try Self.authority.issue(for: names)
        return try TLSCredential(certificateChainPEM: bundle.certificateChainPEM, privateKeyPEM: bundle.privateKeyPEM)
    }

    private struct Outcome {
        var leafDER: [UInt8]
        var alpn: String
    }

    /// Handshakes with SNI `name`, offering `alpn`; nil when the handshake fails.
    private func handshake(_ table: CertificateTable, name: String, alpn: [String]) throws -> Outcome? {
        try attempt(table, name: name, alpn: alpn).outcome
    }

    /// The outcome, or the reason (`SSL_R_…`) the client saw the handshake fail for.
    private func attempt(
        _ table: CertificateTable, name: String, alpn: [String]
    ) throws -> (outcome: Outcome?, clientReason: Int32?) {
        let server = try #require(
            TLSConnection(context: try TLSServerContext(tickets: nil), certificates: table, localName: nil))
        let clientContext = try #require(SSL_CTX_new(TLS_method()))
        defer { SSL_CTX_free(clientContext) }
        let client = try #require(SSL_new(clientContext))
        defer { SSL_free(client) }
        let toClient = BIO_new(BIO_s_mem())!
        let fromClient = BIO_new(BIO_s_mem())!
        SSL_set_bio(client, toClient, fromClient)
        SSL_set_connect_state(client)
        SSL_set_tlsext_host_name(client, name)
        let wire = alpn.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
        #expect(SSL_set_alpn_protos(client, wire, wire.count) == 0)

        var serverDone = false
        for _ in 0..<10 {
            let clientResult = SSL_do_handshake(client)
            // Read now: the server's calls below reuse this thread's error queue.
            let clientError = SSL_get_error(client, clientResult)
            var pending: UnsafePointer<UInt8>?
            var length = 0
            BIO_mem_contents(fromClient, &pending, &length)
            if length > 0 {
                server.feed(ByteBuffer(bytes: UnsafeBufferPointer(start: pending, count: length)))
                _ = BIO_reset(fromClient)
            }
            let progress = server.handshake()
            if case .complete = progress { serverDone = true }
            var output = ByteBuffer()
            server.drainOutput(into: &output)
            output.withUnsafeReadableBytes { _ = BIO_write(toClient, $0.baseAddress, Int32($0.count)) }
            if case .failed = progress {
                // Let the client read the alert.
                ERR_clear_error()
                _ = SSL_do_handshake(client)
                return (nil, Int32(ERR_peek_last_error() & 0xfff))  // ERR_GET_REASON
            }
            if clientResult == 1, serverDone { break }
            if clientResult != 1, clientError != SSL_ERROR_WANT_READ { return (nil, nil) }
        }
        guard serverDone, let peer = SSL_get0_peer_certificates(client), let leaf = sk_CRYPTO_BUFFER_value(peer, 0)
        else { return (nil, nil) }
        var selected: UnsafePointer<UInt8>?
        var selectedLength: UInt32 = 0
        SSL_get0_alpn_selected(client, &selected, &selectedLength)
        let outcome = Outcome(
            leafDER: Array(UnsafeBufferPointer(start: CRYPTO_BUFFER_data(leaf), count: CRYPTO_BUFFER_len(leaf))),
            alpn: String(decoding: UnsafeBufferPointer(start: selected, count: Int(selectedLength)), as: UTF8.self))
        return (outcome, nil)
    }

    private func der(_ credential: TLSCredential) -> [UInt8] {
        Array(
            UnsafeBufferPointer(
                start: CRYPTO_BUFFER_data(credential.chain[0]), count: CRYPTO_BUFFER_len(credential.chain[0])))
    }

    @Test func acmeClientsGetTheChallengeCertificateAndOthersTheSitesOwn() throws {
        let own = try credential(["a.test"])
        let challenge = try credential(["a.test"])
        let table = CertificateTable(
            [own], acmeChallenges: FixedChallenges(certificates: ["a.test": challenge]), managedNames: ["a.test"])

        let acme = try #require(try handshake(table, name: "a.test", alpn: ["acme-tls/1"]))
        #expect(acme.leafDER == der(challenge))
        #expect(acme.alpn == "acme-tls/1")

        let browser = try #require(try handshake(table, name: "a.test", alpn: ["h2", "http/1.1"]))
        #expect(browser.leafDER == der(own))
        #expect(browser.alpn == "h2")
    }

    @Test func acmeClientsWithoutAPendingChallengeAreRefused() throws {
        let table = CertificateTable(
            [try credential(["a.test", "b.test"])], acmeChallenges: FixedChallenges(certificates: [:]),
            managedNames: ["b.test"])
        #expect(try handshake(table, name: "b.test", alpn: ["acme-tls/1"]) == nil)
        #expect(try handshake(table, name: "b.test", alpn: ["http/1.1"])?.alpn == "http/1.1")
    }

    @Test func challengeCertificatesAreShownOnlyForManagedNames() throws {
        let challenge = try credential(["a.test"])
        let table = CertificateTable(
            [try credential(["a.test"])], acmeChallenges: FixedChallenges(certificates: ["a.test": challenge]))
        #expect(try handshake(table, name: "a.test", alpn: ["acme-tls/1"]) == nil)
    }

    @Test func aPendingNameIsRefusedWithUnrecognizedNameNotTheDefault() throws {
        let fallback = try credential(["localhost"])
        let table = CertificateTable([fallback], managedNames: ["new.test"], pendingNames: ["new.test"])
        let refused = try attempt(table, name: "new.test", alpn: ["h2"])
        #expect(refused.outcome == nil)
        #expect(refused.clientReason == SSL_R_TLSV1_ALERT_UNRECOGNIZED_NAME)
        #expect(try handshake(table, name: "other.test", alpn: ["h2"])?.leafDER == der(fallback))
    }
}

private struct FixedChallenges: ACMEChallengeAnswers {
    var certificates: [String: TLSCredential]

    func tlsALPNCertificate(for name: String) -> TLSCredential? { certificates[name] }
    func httpKeyAuthorization(token: String) -> String? { nil }
}
