import VelocityConfig

/// One `acme` policy of the config, as issuance needs it.
public struct ACMEIssuerSettings: Sendable, Hashable, CustomStringConvertible {
    public var directoryURL: String
    public var email: String?
    /// Key identifier and HMAC key; the key is a secret and never printed.
    public var externalAccount: ExternalAccount?
    /// The challenges to try, in order: those enabled that have a listener where the CA connects.
    public var challenges: [ChallengeType]
    public var keyType: CertificateKeyType
    /// Extra roots for the CA's own HTTPS.
    public var trustedRootsPEM: String?

    public struct ExternalAccount: Sendable, Hashable, CustomStringConvertible {
        public var keyID: String
        public var macKey: [UInt8]

        public init(keyID: String, macKey: [UInt8]) {
            self.keyID = keyID
            self.macKey = macKey
        }

        /// The key identifier only.
        public var description: String { keyID }
    }

    public init(
        directoryURL: String, email: String?, externalAccount: ExternalAccount?, challenges: [ChallengeType],
        keyType: CertificateKeyType, trustedRootsPEM: String?
    ) {
        self.directoryURL = directoryURL
        self.email = email
        self.externalAccount = externalAccount
        self.challenges = challenges
        self.keyType = keyType
        self.trustedRootsPEM = trustedRootsPEM
    }

    /// The CA only: settings may hold secrets.
    public var description: String { directoryURL }
}
