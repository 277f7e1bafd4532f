import CNIOBoringSSL
import Synchronization

/// The keys that encrypt session tickets: the newest encrypts, and the two before it still decrypt, so a
/// ticket stays usable for two to three rotation periods and a stolen key stops mattering soon after. One ring
/// serves every TLS context of the process, so tickets survive config changes that replace a context.
public final class TicketKeyRing: Sendable {
    struct Key: Sendable {
        let name: [UInt8]
        let hmacKey: [UInt8]
        let aesKey: [UInt8]
        let created: ContinuousClock.Instant

        init(now: ContinuousClock.Instant) {
            name = Self.random(16)
            hmacKey = Self.random(32)
            aesKey = Self.random(32)
            created = now
        }

        private static func random(_ count: Int) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: count)
            precondition(RAND_bytes(&bytes, count) == 1, "BoringSSL's random generator failed")
            return bytes
        }
    }

    private struct State {
        /// Newest first.
        var keys: [Key] = []
        var rotation: Duration
    }

    private let state: Mutex<State>
    /// The encrypting key plus this many older ones that still decrypt.
    static let retired = 2

    public init(rotation: Duration) {
        state = Mutex(State(rotation: rotation))
    }

    /// Takes effect at the next ticket: a key older than the new period is replaced then.
    public func setRotation(_ rotation: Duration) {
        state.withLock { $0.rotation = rotation }
    }

    /// The key for a new ticket, rotating first if the current one has served its period.
    func encryptionKey(now: ContinuousClock.Instant = .now) -> Key {
        state.withLock { state in
            if let current = state.keys.first, now - current.created < state.rotation { return current }
            let key = Key(now: now)
            state.keys.insert(key, at: 0)
            state.keys.removeLast(max(0, state.keys.count - 1 - Self.retired))
            return key
        }
    }

    /// The key a ticket names, and whether it is the current one (otherwise the ticket is reissued).
    func decryptionKey(named name: UnsafeBufferPointer<UInt8>) -> (key: Key, current: Bool)? {
        state.withLock { state in
            guard let index = state.keys.firstIndex(where: { $0.name.elementsEqual(name) }) else { return nil }
            return (state.keys[index], index == 0)
        }
    }

    /// BoringSSL's ticket callback (see `SSL_CTX_set_tlsext_ticket_key_cb` for its return conventions):
    /// AES-256-CBC with HMAC-SHA256, keyed by the connection's ring.
    static let callback:
        @convention(c) (
            OpaquePointer?, UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt8>?,
            UnsafeMutablePointer<EVP_CIPHER_CTX>?, UnsafeMutablePointer<HMAC_CTX>?, Int32
        ) -> Int32 = { ssl, name, iv, cipher, hmac, encrypt in
            guard let name, let iv, let cipher, let hmac,
                let ring = TLSConnection.owner(of: ssl)?.context.tickets
            else { return -1 }
            let key: Key
            var result: Int32 = 1
            if encrypt == 1 {
                key = ring.encryptionKey()
                key.name.withUnsafeBufferPointer { name.update(from: $0.baseAddress!, count: 16) }
                guard RAND_bytes(iv, 16) == 1 else { return -1 }
            } else {
                guard let found = ring.decryptionKey(named: UnsafeBufferPointer(start: name, count: 16)) else {
                    return 0
                }
                key = found.key
                result = found.current ? 1 : 2
            }
            let keyed =
                key.hmacKey.withUnsafeBufferPointer { HMAC_Init_ex(hmac, $0.baseAddress, $0.count, EVP_sha256(), nil) }
                == 1
                && key.aesKey.withUnsafeBufferPointer { aes in
                    encrypt == 1
                        ? EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nil, aes.baseAddress, iv) == 1
                        : EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nil, aes.baseAddress, iv) == 1
                }
            return keyed ? result : -1
        }
}
