import CNIOBoringSSL

/// The server's key for address-validation tokens (Retry and NEW_TOKEN, RFC 9000 §8.1): AES-256-GCM with a
/// random nonce per token, so only this server can make or read them and a token cannot be altered.
public final class QUICTokenKey: @unchecked Sendable {
    private static let nonceLength = 12
    public static let overhead = nonceLength + 16

    // Set up once in init; BoringSSL's AEAD contexts may be used from several threads at once.
    private let aead: UnsafeMutablePointer<EVP_AEAD_CTX>

    /// A new random key.
    public init() {
        var key = [UInt8](repeating: 0, count: 32)
        RAND_bytes(&key, key.count)
        guard let aead = EVP_AEAD_CTX_new(EVP_aead_aes_256_gcm(), key, key.count, 16) else {
            fatalError("BoringSSL could not allocate an AEAD context")
        }
        self.aead = aead
    }

    deinit {
        EVP_AEAD_CTX_free(aead)
    }

    /// Encrypts `plaintext`, bound to `context` (such as the client's address), which must match when opening.
    public func seal(_ plaintext: [UInt8], context: [UInt8]) -> [UInt8] {
        var token = [UInt8](repeating: 0, count: Self.overhead + plaintext.count)
        var length = 0
        token.withUnsafeMutableBufferPointer { token in
            let out = token.baseAddress!
            RAND_bytes(out, Self.nonceLength)
            let status = EVP_AEAD_CTX_seal(
                aead, out + Self.nonceLength, &length, token.count - Self.nonceLength, out, Self.nonceLength,
                plaintext, plaintext.count, context, context.count)
            precondition(status == 1, "sealing into a buffer with room for the tag cannot fail")
        }
        return token
    }

    /// The plaintext of a token this key made for `context`, or nil for anything else.
    public func open(_ token: [UInt8], context: [UInt8]) -> [UInt8]? {
        guard token.count >= Self.overhead else { return nil }
        var plaintext = [UInt8](repeating: 0, count: token.count - Self.overhead)
        var length = 0
        let status = token.withUnsafeBufferPointer { token in
            EVP_AEAD_CTX_open(
                aead, &plaintext, &length, plaintext.count, token.baseAddress!, Self.nonceLength,
                token.baseAddress! + Self.nonceLength, token.count - Self.nonceLength, context, context.count)
        }
        guard status == 1 else {
            ERR_clear_error()
            return nil
        }
        return plaintext
    }
}

/// The Retry packet's integrity tag (RFC 9001 §5.8): AES-128-GCM under a key and nonce fixed by the RFC, over
/// the client's original destination ID followed by the Retry packet. It proves the Retry answered that
/// Initial; it is not a secret.
public enum QUICRetryIntegrity {
    private static let key: [UInt8] = [
        0xbe, 0x0c, 0x69, 0x0b, 0x9f, 0x66, 0x57, 0x5a, 0x1d, 0x76, 0x6b, 0x54, 0xe3, 0x68, 0xc8, 0x4e,
    ]
    private static let nonce: [UInt8] = [0x46, 0x15, 0x99, 0xd3, 0x5d, 0x63, 0x2b, 0xf2, 0x23, 0x98, 0x25, 0xbb]

    /// The 16-byte tag for `pseudoPacket` (ODCID length, ODCID, then the Retry packet without its tag).
    public static func tag(pseudoPacket: [UInt8]) -> [UInt8] {
        var context = EVP_AEAD_CTX()
        guard EVP_AEAD_CTX_init(&context, EVP_aead_aes_128_gcm(), key, key.count, 16, nil) == 1 else {
            fatalError("BoringSSL refused a valid AES-128-GCM key")
        }
        defer { EVP_AEAD_CTX_cleanup(&context) }
        var tag = [UInt8](repeating: 0, count: 16)
        var length = 0
        let status = EVP_AEAD_CTX_seal(
            &context, &tag, &length, tag.count, nonce, nonce.count, nil, 0, pseudoPacket, pseudoPacket.count)
        precondition(status == 1 && length == 16, "sealing nothing into a tag-sized buffer cannot fail")
        return tag
    }
}

/// Makes stateless reset tokens (RFC 9000 §10.3): an HMAC of the connection ID under a server key, so the
/// server can give the token with an ID and later prove, without any state, that it issued that ID.
public final class QUICResetTokenKey: @unchecked Sendable {
    private let key: [UInt8]

    public init() {
        var key = [UInt8](repeating: 0, count: 32)
        RAND_bytes(&key, key.count)
        self.key = key
    }

    /// The 16-byte token for a connection ID.
    public func token(for connectionID: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        _ = HMAC(EVP_sha256(), key, key.count, connectionID, connectionID.count, &digest, &length)
        return Array(digest.prefix(16))
    }
}
