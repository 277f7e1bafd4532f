import CNIOBoringSSL

/// The keys protecting QUIC packets in one direction at one encryption level (RFC 9001 §5): an AEAD context
/// kept for the key's whole life (a new context per packet costs more than the encryption), its IV, and the
/// header-protection key.
public final class QUICPacketKey: @unchecked Sendable {
    public static let tagLength = 16
    /// How many bytes of ciphertext header protection samples.
    public static let sampleLength = 16

    public let suite: QUICCipherSuite
    /// Kept to derive the next key generation (RFC 9001 §6).
    private let secret: [UInt8]
    private let iv: [UInt8]
    private let aead: UnsafeMutablePointer<EVP_AEAD_CTX>
    private let headerProtection: HeaderProtection

    /// Derives the packet and header-protection keys from a traffic secret.
    public convenience init(suite: QUICCipherSuite, secret: [UInt8]) {
        let hp = HKDFLabel.expand(secret: secret, label: "quic hp", length: suite.keyLength, digest: suite.digest)
        self.init(suite: suite, secret: secret, headerProtection: HeaderProtection(suite: suite, key: hp))
    }

    private init(suite: QUICCipherSuite, secret: [UInt8], headerProtection: HeaderProtection) {
        self.suite = suite
        self.secret = secret
        self.headerProtection = headerProtection
        let key = HKDFLabel.expand(secret: secret, label: "quic key", length: suite.keyLength, digest: suite.digest)
        iv = HKDFLabel.expand(secret: secret, label: "quic iv", length: 12, digest: suite.digest)
        guard let aead = EVP_AEAD_CTX_new(suite.aead, key, key.count, Self.tagLength) else {
            fatalError("BoringSSL could not allocate an AEAD context")
        }
        self.aead = aead
    }

    deinit {
        EVP_AEAD_CTX_free(aead)
    }

    /// The key of the next key phase; header protection stays the same (RFC 9001 §6.1).
    public func nextGeneration() -> QUICPacketKey {
        let next = HKDFLabel.expand(secret: secret, label: "quic ku", length: secret.count, digest: suite.digest)
        return QUICPacketKey(suite: suite, secret: next, headerProtection: headerProtection)
    }

    /// Encrypts `payload` in place and writes the tag into the 16 bytes that follow it, which the caller has
    /// reserved. `header` is the unprotected header, authenticated as associated data.
    public func seal(
        packetNumber: UInt64, header: UnsafeRawBufferPointer, payload: UnsafeMutableRawBufferPointer,
        tag: UnsafeMutableRawBufferPointer
    ) {
        var tagLength = 0
        let status = withUnsafeBytes(of: nonce(for: packetNumber)) { nonce in
            EVP_AEAD_CTX_seal_scatter(
                aead, payload.baseAddress?.assumingMemoryBound(to: UInt8.self),
                tag.baseAddress?.assumingMemoryBound(to: UInt8.self), &tagLength, tag.count,
                nonce.baseAddress?.assumingMemoryBound(to: UInt8.self), nonce.count,
                payload.baseAddress?.assumingMemoryBound(to: UInt8.self), payload.count, nil, 0,
                header.baseAddress?.assumingMemoryBound(to: UInt8.self), header.count)
        }
        precondition(status == 1 && tagLength == Self.tagLength, "sealing with a reserved tag cannot fail")
    }

    /// Decrypts `ciphertext` (payload followed by its tag) in place; returns the plaintext's length, or nil when
    /// the packet does not authenticate.
    public func open(
        packetNumber: UInt64, header: UnsafeRawBufferPointer, ciphertext: UnsafeMutableRawBufferPointer
    ) -> Int? {
        guard ciphertext.count >= Self.tagLength else { return nil }
        var length = 0
        let bytes = ciphertext.baseAddress?.assumingMemoryBound(to: UInt8.self)
        // The nonce's twelve bytes through one pointer to the whole tuple: `&tuple.0` may point at a copy
        // of its first element only.
        let status = withUnsafeBytes(of: nonce(for: packetNumber)) { nonce in
            EVP_AEAD_CTX_open(
                aead, bytes, &length, ciphertext.count, nonce.baseAddress?.assumingMemoryBound(to: UInt8.self),
                nonce.count, bytes, ciphertext.count, header.baseAddress?.assumingMemoryBound(to: UInt8.self),
                header.count)
        }
        if status != 1 {
            ERR_clear_error()
            return nil
        }
        return length
    }

    /// The five mask bytes for a header whose ciphertext sample is `sample` (16 bytes).
    public func headerMask(sample: UnsafeRawBufferPointer) -> (UInt8, UInt8, UInt8, UInt8, UInt8) {
        headerProtection.mask(sample: sample)
    }

    private typealias Nonce = (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

    /// The IV with the packet number XORed into its last eight bytes.
    @inline(__always)
    private func nonce(for packetNumber: UInt64) -> Nonce {
        var nonce: Nonce = (iv[0], iv[1], iv[2], iv[3], iv[4], iv[5], iv[6], iv[7], iv[8], iv[9], iv[10], iv[11])
        withUnsafeMutableBytes(of: &nonce) { bytes in
            for index in 0..<8 {
                bytes[4 + index] ^= UInt8(truncatingIfNeeded: packetNumber >> (UInt64(7 - index) * 8))
            }
        }
        return nonce
    }
}

/// Header protection (RFC 9001 §5.4): AES-ECB of the sample, or ChaCha20 keyed by it.
private final class HeaderProtection: @unchecked Sendable {
    private enum Cipher {
        case aes(UnsafeMutablePointer<AES_KEY>)
        case chacha([UInt8])
    }

    private let cipher: Cipher

    init(suite: QUICCipherSuite, key: [UInt8]) {
        if suite == .chacha20Poly1305 {
            cipher = .chacha(key)
        } else {
            let schedule = UnsafeMutablePointer<AES_KEY>.allocate(capacity: 1)
            let status = AES_set_encrypt_key(key, UInt32(key.count * 8), schedule)
            precondition(status == 0, "a 128- or 256-bit AES key is always accepted")
            cipher = .aes(schedule)
        }
    }

    deinit {
        if case .aes(let schedule) = cipher { schedule.deallocate() }
    }

    func mask(sample: UnsafeRawBufferPointer) -> (UInt8, UInt8, UInt8, UInt8, UInt8) {
        var block: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &block) { out in
            let output = out.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let input = sample.baseAddress!.assumingMemoryBound(to: UInt8.self)
            switch cipher {
            case .aes(let schedule):
                AES_encrypt(input, output, schedule)
            case .chacha(let key):
                let counter =
                    UInt32(sample[0]) | UInt32(sample[1]) << 8 | UInt32(sample[2]) << 16
                    | UInt32(sample[3]) << 24
                var zeros: (UInt64, UInt64) = (0, 0)
                withUnsafeBytes(of: &zeros) { zero in
                    CRYPTO_chacha_20(
                        output, zero.baseAddress!.assumingMemoryBound(to: UInt8.self), 5, key, input + 4, counter)
                }
            }
        }
        return withUnsafeBytes(of: &block) { ($0[0], $0[1], $0[2], $0[3], $0[4]) }
    }
}
