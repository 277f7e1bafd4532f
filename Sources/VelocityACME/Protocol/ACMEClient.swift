import Crypto
import Foundation
import NIOHTTP1
import VelocityConfig

/// RFC 8555 over one account at one CA: the directory, nonces (a bad one retried with the fresh nonce that came
/// with the error), signed requests, and the calls an order needs. An actor: the nonce pool and the account URL
/// are shared by every order in flight.
actor ACMEClient {
    let directoryURL: String
    private let http: ACMEHTTPClient
    private let key: P256.Signing.PrivateKey
    let jwk: JSONWebKey
    private var directory: ACMEDirectory?
    private var nonces: [String] = []
    /// The account's URL (its `kid`), known once the account is found or created.
    private(set) var accountURL: String?

    /// Attempts of one request when the CA keeps refusing nonces.
    static let badNonceAttempts = 10

    init(directoryURL: String, http: ACMEHTTPClient, accountKey: P256.Signing.PrivateKey, accountURL: String?) {
        self.directoryURL = directoryURL
        self.http = http
        key = accountKey
        jwk = JSONWebKey(accountKey.publicKey)
        self.accountURL = accountURL
    }

    /// The account of this key: found if it exists, else created with the contact, the terms agreed to and an
    /// External Account Binding when given (RFC 8555 §7.3). Returns its URL.
    func account(email: String?, externalAccount: (keyID: String, macKey: [UInt8])?) async throws(ACMEError) -> String {
        if let accountURL { return accountURL }
        let directory = try await loadDirectory()
        if directory.meta?.externalAccountRequired == true, externalAccount == nil {
            throw .invalid("\(directoryURL) requires an external account binding (external_account)")
        }
        struct NewAccount: Encodable {
            var termsOfServiceAgreed = true
            var contact: [String]?
            var externalAccountBinding: JSONWebSignature?
        }
        var request = NewAccount(contact: email.map { ["mailto:\($0)"] })
        if let externalAccount {
            do {
                request.externalAccountBinding = try JSONWebSignature.externalAccountBinding(
                    accountKey: jwk, keyID: externalAccount.keyID, macKey: externalAccount.macKey,
                    url: directory.newAccount)
            } catch {
                throw .invalid("the external account binding could not be signed")
            }
        }
        let response = try await post(directory.newAccount, request, signer: .key(jwk))
        guard let location = response.headers.first(name: "location") else {
            throw .malformed("no Location header for the account", url: directory.newAccount)
        }
        accountURL = location
        return location
    }

    /// `replacing` names the certificate this one succeeds (RFC 9773 §5), told only to CAs that offer ARI.
    func newOrder(
        for names: [String], replacing: String? = nil
    ) async throws(ACMEError) -> (url: String, order: ACMEOrder) {
        struct NewOrder: Encodable {
            var identifiers: [ACMEIdentifier]
            var replaces: String?
        }
        let directory = try await loadDirectory()
        let request = NewOrder(
            identifiers: names.map(ACMEIdentifier.dns), replaces: directory.renewalInfo == nil ? nil : replacing)
        let url = directory.newOrder
        let response = try await post(url, request, signer: try signer())
        guard let location = response.headers.first(name: "location") else {
            throw .malformed("no Location header for the order", url: url)
        }
        return (location, try decode(ACMEOrder.self, response, url: url))
    }

    func order(_ url: String) async throws(ACMEError) -> (ACMEOrder, retryAfter: TimeInterval?) {
        let response = try await post(url, nil as Empty?, signer: try signer())
        return (try decode(ACMEOrder.self, response, url: url), response.retryAfter)
    }

    func authorization(_ url: String) async throws(ACMEError) -> (ACMEAuthorization, retryAfter: TimeInterval?) {
        let response = try await post(url, nil as Empty?, signer: try signer())
        return (try decode(ACMEAuthorization.self, response, url: url), response.retryAfter)
    }

    /// The CA's renewal window for a certificate (RFC 9773 §4.2, an unsigned GET); nil when the CA offers none.
    func renewalInfo(for certificateID: String) async throws(ACMEError) -> (RenewalInfo, retryAfter: TimeInterval?)? {
        guard let base = try await loadDirectory().renewalInfo else { return nil }
        let url = base.hasSuffix("/") ? base + certificateID : "\(base)/\(certificateID)"
        let response = try await http.send(.GET, url, accept: "application/json")
        try Self.check(response, url: url)
        return (try decode(RenewalInfo.self, response, url: url), response.retryAfter)
    }

    /// Tells the CA the challenge is ready to be checked (§7.5.1): an empty object, not an empty payload.
    func respond(to challenge: String) async throws(ACMEError) {
        _ = try await post(challenge, Empty(), signer: try signer())
    }

    func finalize(_ url: String, csr: [UInt8]) async throws(ACMEError) -> ACMEOrder {
        struct Finalize: Encodable { var csr: String }
        let response = try await post(url, Finalize(csr: Base64.encodeURLSafe(csr)), signer: try signer())
        return try decode(ACMEOrder.self, response, url: url)
    }

    /// The PEM chain, leaf first (§7.4.2).
    func certificateChain(_ url: String) async throws(ACMEError) -> String {
        let response = try await post(
            url, nil as Empty?, signer: try signer(), accept: "application/pem-certificate-chain")
        let pem = String(decoding: response.body, as: UTF8.self)
        guard pem.contains("-----BEGIN CERTIFICATE-----") else {
            throw .malformed("the certificate download holds no PEM certificate", url: url)
        }
        return pem
    }

    private struct Empty: Encodable {}

    private func signer() throws(ACMEError) -> JSONWebSignature.Signer {
        guard let accountURL else { throw .invalid("no ACME account yet") }
        return .account(accountURL)
    }

    private func loadDirectory() async throws(ACMEError) -> ACMEDirectory {
        if let directory { return directory }
        let response = try await http.send(.GET, directoryURL, accept: "application/json")
        try Self.check(response, url: directoryURL)
        let loaded = try decode(ACMEDirectory.self, response, url: directoryURL)
        directory = loaded
        return loaded
    }

    private func nonce() async throws(ACMEError) -> String {
        if let nonce = nonces.popLast() { return nonce }
        let url = try await loadDirectory().newNonce
        let response = try await http.send(.HEAD, url)
        guard let nonce = response.headers.first(name: "replay-nonce") else {
            throw .malformed("no Replay-Nonce header", url: url)
        }
        return nonce
    }

    /// A signed POST (`payload` nil: POST-as-GET, §6.3). Every answer's nonce is kept for the next request; a
    /// `badNonce` refusal is retried with it.
    private func post<Payload: Encodable>(
        _ url: String, _ payload: Payload?, signer: JSONWebSignature.Signer, accept: String? = nil
    ) async throws(ACMEError) -> ACMEHTTPResponse {
        let body: Data?
        do {
            body = try payload.map { try JSONEncoder.acme.encode($0) }
        } catch {
            throw .invalid("the request to \(url) could not be encoded")
        }
        var attempt = 1
        while true {
            let jws: JSONWebSignature
            let encoded: Data
            do {
                jws = try JSONWebSignature.es256(
                    payload: body, url: url, nonce: try await nonce(), signer: signer, key: key)
                encoded = try JSONEncoder.acme.encode(jws)
            } catch let error as ACMEError {
                throw error
            } catch {
                throw .invalid("the request to \(url) could not be signed")
            }
            let response = try await http.send(
                .POST, url, body: Array(encoded), contentType: "application/jose+json", accept: accept)
            if let nonce = response.headers.first(name: "replay-nonce") { nonces.append(nonce) }
            do {
                try Self.check(response, url: url)
                return response
            } catch  where error.isBadNonce && attempt < Self.badNonceAttempts {
                attempt += 1
            }
        }
    }

    /// Turns an error status into the CA's problem document, or at least the status.
    private static func check(_ response: ACMEHTTPResponse, url: String) throws(ACMEError) {
        guard response.status >= 400 else { return }
        if let problem = try? JSONDecoder().decode(ACMEProblem.self, from: Data(response.body)),
            problem.type != nil || problem.detail != nil
        {
            throw .problem(problem, url: url)
        }
        throw .status(response.status, url: url)
    }

    private func decode<T: Decodable>(_ type: T.Type, _ response: ACMEHTTPResponse, url: String) throws(ACMEError) -> T
    {
        do {
            return try JSONDecoder.acme.decode(type, from: Data(response.body))
        } catch {
            throw .malformed("the answer does not parse as \(type)", url: url)
        }
    }
}
