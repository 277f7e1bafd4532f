/// A password hash in the modular crypt form `$scrypt$ln=15,r=8,p=1$<salt>$<hash>` (base64 without padding),
/// the form `velocity hash-password` prints and passlib reads.
public struct ScryptHash: Sendable, Equatable {
    /// log2 of the CPU/memory cost N.
    public var logRounds: Int
    public var blockSize: Int
    public var parallelism: Int
    public var salt: [UInt8]
    public var hash: [UInt8]

    /// Memory one verification needs: 128 · r · N bytes.
    public var memory: Int { 128 * blockSize << logRounds }

    /// The cost a new hash gets: 32 MiB and tens of milliseconds per check.
    public static let defaultLogRounds = 15
    /// Bounds keep one login attempt from costing the server more than it can afford.
    public static let maximumMemory = 256 << 20

    public init(logRounds: Int, blockSize: Int, parallelism: Int, salt: [UInt8], hash: [UInt8]) {
        self.logRounds = logRounds
        self.blockSize = blockSize
        self.parallelism = parallelism
        self.salt = salt
        self.hash = hash
    }

    /// Parses and checks the bounds; the error says what is wrong without echoing the hash.
    public init(parsing text: String) throws(ScryptHashError) {
        let fields = text.split(separator: "$", omittingEmptySubsequences: false)
        guard fields.count == 5, fields[0].isEmpty, fields[1] == "scrypt" else {
            throw ScryptHashError("a password must be an scrypt hash from `velocity hash-password`, never plain text")
        }
        var parameters: [Substring: Int] = [:]
        for pair in fields[2].split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let value = Int(parts[1]) else { throw ScryptHashError("malformed parameters") }
            parameters[parts[0]] = value
        }
        guard let logRounds = parameters["ln"], let blockSize = parameters["r"], let parallelism = parameters["p"],
            parameters.count == 3
        else { throw ScryptHashError("the parameters must be ln, r and p") }
        guard let salt = Base64.decode(fields[3].utf8), let hash = Base64.decode(fields[4].utf8) else {
            throw ScryptHashError("salt and hash must be base64")
        }
        self.init(logRounds: logRounds, blockSize: blockSize, parallelism: parallelism, salt: salt, hash: hash)
        guard (1...24).contains(logRounds), (1...64).contains(blockSize), (1...16).contains(parallelism),
            memory <= Self.maximumMemory
        else {
            throw ScryptHashError(
                "scrypt parameters out of range: 128·r·2^ln must be at most 256 MiB (ln ≤ 18 with r = 8), p ≤ 16")
        }
        guard salt.count >= 8, hash.count >= 16 else {
            throw ScryptHashError("the salt must be at least 8 bytes and the hash at least 16")
        }
    }

    public var encoded: String {
        "$scrypt$ln=\(logRounds),r=\(blockSize),p=\(parallelism)$"
            + Base64.encode(salt, padded: false) + "$" + Base64.encode(hash, padded: false)
    }
}

public struct ScryptHashError: Error, Sendable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
