import Crypto
import CryptoExtras
import HTTPTypes
import Synchronization
import VelocityConfig

/// A compiled `basic_auth` handler. Checking a password costs an scrypt derivation (tens of milliseconds,
/// by design), so it runs off the event loop; credentials that passed once are remembered, keyed by a salted
/// digest, so a client's later requests pass at the cost of a hash.
public final class BasicAuth: Sendable {
    public enum Check: Sendable {
        case granted
        /// No usable credentials were sent: no derivation is worth running.
        case denied
        case verify(PasswordCheck)
    }

    /// 401 with the challenge.
    let challenge: StaticResponse
    private let accounts: [String: ScryptHash]
    /// Stands in for unknown users, with the costliest account's parameters, so that a wrong name costs as
    /// much as a wrong password and does not tell which names exist.
    private let decoy: ScryptHash
    private let cacheKey = SymmetricKey(size: .bits256)
    private let granted = Mutex<Set<HashedAuthenticationCode<SHA256>>>([])
    private static let cacheLimit = 4096

    init(_ config: BasicAuthConfig) {
        // Validation has parsed every hash.
        accounts = Dictionary(
            config.accounts.compactMap { account in
                (try? ScryptHash(parsing: account.password)).map { (account.username, $0) }
            },
            uniquingKeysWith: { first, _ in first })
        var decoy = accounts.values.max { $0.memory < $1.memory }!
        decoy.salt = Array(SymmetricKey(size: .bits128).withUnsafeBytes(Array.init))
        self.decoy = decoy
        var response = StaticResponse(status: .unauthorized, body: "401 Unauthorized\n")
        response.headerFields[.wwwAuthenticate] = "Basic realm=\"\(config.realm ?? "restricted")\", charset=\"UTF-8\""
        challenge = response
    }

    func check(_ authorization: String?) -> Check {
        guard let authorization, let (username, password) = Self.credentials(authorization) else { return .denied }
        let digest = HMAC<SHA256>.authenticationCode(for: Array(authorization.utf8), using: cacheKey)
        if granted.withLock({ $0.contains(digest) }) { return .granted }
        let hash = accounts[username]
        return .verify(
            PasswordCheck(hash: hash ?? decoy, password: password, known: hash != nil, challenge: challenge) {
                [self] in
                remember(digest)
            })
    }

    private func remember(_ digest: HashedAuthenticationCode<SHA256>) {
        granted.withLock { cache in
            if cache.count >= Self.cacheLimit { cache.removeAll() }
            cache.insert(digest)
        }
    }

    /// The user and password of a `Basic` Authorization header (RFC 7617).
    private static func credentials(_ header: String) -> (String, [UInt8])? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].caseInsensitiveEquals("basic"),
            let decoded = Base64.decode(parts[1].utf8.filter { $0 != UInt8(ascii: " ") }),
            let colon = decoded.firstIndex(of: UInt8(ascii: ":"))
        else { return nil }
        return (String(decoding: decoded[..<colon], as: UTF8.self), Array(decoded[(colon + 1)...]))
    }
}

/// One password verification, to run on a thread that may block.
public struct PasswordCheck: Sendable {
    let hash: ScryptHash
    let password: [UInt8]
    /// False for the decoy of an unknown user: the derivation runs, but nothing can pass.
    let known: Bool
    /// The 401 to send when the password is wrong.
    public let challenge: StaticResponse
    let onSuccess: @Sendable () -> Void

    /// Derives and compares in constant time; true when the password is right.
    public func run() -> Bool {
        guard
            let derived = try? KDF.Scrypt.deriveKey(
                from: password, salt: hash.salt, outputByteCount: hash.hash.count, rounds: 1 << hash.logRounds,
                blockSize: hash.blockSize, parallelism: hash.parallelism, maxMemory: ScryptHash.maximumMemory + 1 << 20)
        else { return false }
        let matches = derived.withUnsafeBytes { derived in
            zip(derived, hash.hash).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
        }
        guard matches, known else { return false }
        onSuccess()
        return true
    }
}

extension ScryptHash {
    /// A new hash of `password` with a random salt, r = 8 and p = 1; the cost is checked as a stored hash's is.
    public static func derive(password: [UInt8], logRounds: Int) throws(ScryptHashError) -> ScryptHash {
        let salt = SymmetricKey(size: .bits128).withUnsafeBytes(Array.init)
        var hash = try ScryptHash(
            parsing: ScryptHash(
                logRounds: logRounds, blockSize: 8, parallelism: 1, salt: salt, hash: Array(repeating: 0, count: 32)
            ).encoded)
        guard
            let derived = try? KDF.Scrypt.deriveKey(
                from: password, salt: salt, outputByteCount: 32, rounds: 1 << logRounds, blockSize: 8, parallelism: 1,
                maxMemory: maximumMemory + 1 << 20)
        else { throw ScryptHashError("scrypt failed") }
        hash.hash = derived.withUnsafeBytes(Array.init)
        return hash
    }
}
