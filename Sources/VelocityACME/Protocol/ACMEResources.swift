/// The resources of RFC 8555 §7.1 that Velocity reads, with only the fields it uses.

/// §7.1.1: where each operation lives.
struct ACMEDirectory: Decodable, Sendable {
    var newNonce: String
    var newAccount: String
    var newOrder: String
    /// RFC 9773; absent at CAs without ARI.
    var renewalInfo: String?
    var meta: Meta?

    struct Meta: Decodable, Sendable {
        var termsOfService: String?
        var externalAccountRequired: Bool?
    }
}

/// §7.1.3. The URL of an order comes from the `Location` header of its creation.
struct ACMEOrder: Decodable, Sendable {
    enum Status: String, Decodable, Sendable {
        case pending, ready, processing, valid, invalid
    }

    var status: Status
    var authorizations: [String]
    var finalize: String
    var certificate: String?
    var error: ACMEProblem?
}

/// §7.1.4.
struct ACMEAuthorization: Decodable, Sendable {
    enum Status: String, Decodable, Sendable {
        case pending, valid, invalid, deactivated, expired, revoked
    }

    var identifier: ACMEIdentifier
    var status: Status
    var challenges: [ACMEChallenge]
}

struct ACMEIdentifier: Codable, Sendable, Equatable {
    var type: String
    var value: String

    static func dns(_ name: String) -> ACMEIdentifier {
        ACMEIdentifier(type: "dns", value: name)
    }
}

/// §8: one way to prove control of an identifier.
struct ACMEChallenge: Decodable, Sendable {
    enum Status: String, Decodable, Sendable {
        case pending, processing, valid, invalid
    }

    var type: String
    var url: String
    var status: Status
    var token: String?
    var error: ACMEProblem?
}
