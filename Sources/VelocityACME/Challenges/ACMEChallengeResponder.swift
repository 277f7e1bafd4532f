import Foundation
import Synchronization
import VelocityStore
import VelocityTLS

/// Challenges in progress, kept in the store (namespace `acme-challenges`) so that any instance sharing the
/// store can answer the CA: HTTP-01 key authorizations by token, TLS-ALPN-01 ones by name. Handshakes and
/// requests read them here; the certificate a TLS-ALPN-01 answer needs is built once per key authorization.
public final class ACMEChallengeResponder: ACMEChallengeAnswers {
    private let store: any Store
    private let certificates = Mutex<[String: (keyAuthorization: String, credential: TLSCredential)]>([:])

    static let namespace = "acme-challenges"

    public init(store: any Store) {
        self.store = store
    }

    public func httpKeyAuthorization(token: String) -> String? {
        guard KeyAuthorization.isToken(token) else { return nil }
        return (try? store.record(Self.namespace, key: "http-01/\(token)")).flatMap { $0 }.map {
            String(decoding: $0, as: UTF8.self)
        }
    }

    public func tlsALPNCertificate(for name: String) -> TLSCredential? {
        guard let record = (try? store.record(Self.namespace, key: "tls-alpn-01/\(name)")).flatMap({ $0 }) else {
            return nil
        }
        let keyAuthorization = String(decoding: record, as: UTF8.self)
        if let cached = certificates.withLock({ $0[name] }), cached.keyAuthorization == keyAuthorization {
            return cached.credential
        }
        guard let made = try? TLSALPNCertificate.make(name: name, keyAuthorization: keyAuthorization),
            let credential = try? TLSCredential(
                certificateChainPEM: made.certificatePEM, privateKeyPEM: made.privateKeyPEM)
        else { return nil }
        certificates.withLock { $0[name] = (keyAuthorization, credential) }
        return credential
    }

    /// Makes the answer available before the CA is told to look.
    func provision(_ type: ChallengeType, name: String, token: String, keyAuthorization: String) throws {
        try store.setRecord(
            Self.namespace, key: Self.key(type, name: name, token: token), value: Data(keyAuthorization.utf8))
    }

    func remove(_ type: ChallengeType, name: String, token: String) {
        try? store.setRecord(Self.namespace, key: Self.key(type, name: name, token: token), value: nil)
        if type == .tlsALPN01 { certificates.withLock { $0[name] = nil } }
    }

    private static func key(_ type: ChallengeType, name: String, token: String) -> String {
        switch type {
        case .http01: "http-01/\(token)"
        case .tlsALPN01: "tls-alpn-01/\(name)"
        }
    }
}
