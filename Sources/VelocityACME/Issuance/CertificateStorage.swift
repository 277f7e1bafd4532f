import Crypto
import Foundation
import VelocityStore

/// The store's records of ACME: issued certificates with their keys (namespace `certificates`) and account
/// keys (namespace `acme`). The SQLite file is 0600; nothing here is written anywhere else.
public struct CertificateStorage: Sendable {
    private let store: any Store

    public init(store: any Store) {
        self.store = store
    }

    public func certificate(for name: String) -> IssuedCertificate? {
        guard let data = (try? store.record("certificates", key: "acme/\(name)")).flatMap({ $0 }) else { return nil }
        return try? JSONDecoder.storage.decode(IssuedCertificate.self, from: data)
    }

    /// Only the holder orders a name's certificate, however many processes share the store.
    func lock(_ name: String, owner: String, for duration: TimeInterval) -> Bool {
        (try? store.acquireLock("acme/\(name)", owner: owner, until: Date() + duration)) ?? false
    }

    func unlock(_ name: String, owner: String) {
        try? store.releaseLock("acme/\(name)", owner: owner)
    }

    /// The OCSP staple kept for `name`'s certificate, whichever certificate that was.
    public func staple(for name: String) -> OCSPStaple? {
        guard let data = (try? store.record("ocsp", key: name)).flatMap({ $0 }) else { return nil }
        return try? JSONDecoder.storage.decode(OCSPStaple.self, from: data)
    }

    /// Nil removes it.
    func saveStaple(_ staple: OCSPStaple?, for name: String) throws {
        try store.setRecord("ocsp", key: name, value: try staple.map { try JSONEncoder.storage.encode($0) })
    }

    func save(_ certificate: IssuedCertificate, for name: String) throws {
        try store.setRecord("certificates", key: "acme/\(name)", value: try JSONEncoder.storage.encode(certificate))
    }

    struct Account: Codable {
        var keyPEM: String
        var url: String?

        enum CodingKeys: String, CodingKey {
            case keyPEM = "key_pem"
            case url
        }
    }

    /// The account of one contact at one CA; a new key is made and kept before first use, so a crash between
    /// creating the account and learning its URL still finds the same account next time.
    func account(directory: String, email: String?) throws -> Account {
        let key = Self.accountKey(directory: directory, email: email)
        if let data = try store.record("acme", key: key),
            let account = try? JSONDecoder.storage.decode(Account.self, from: data)
        {
            return account
        }
        let account = Account(keyPEM: P256.Signing.PrivateKey().pemRepresentation, url: nil)
        try store.setRecord("acme", key: key, value: try JSONEncoder.storage.encode(account))
        return account
    }

    func saveAccount(_ account: Account, directory: String, email: String?) throws {
        try store.setRecord(
            "acme", key: Self.accountKey(directory: directory, email: email),
            value: try JSONEncoder.storage.encode(account))
    }

    private static func accountKey(directory: String, email: String?) -> String {
        let digest = SHA256.hash(data: Array("\(directory)\n\(email ?? "")".utf8))
        return "account/" + digest.map { String(format: "%02x", $0) }.joined()
    }
}

extension JSONEncoder {
    static var storage: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = .sortedKeys
        return encoder
    }
}

extension JSONDecoder {
    static var storage: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return decoder
    }
}
