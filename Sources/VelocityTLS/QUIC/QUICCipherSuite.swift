import CNIOBoringSSL

/// The TLS 1.3 cipher suites QUIC packets are protected with (RFC 9001 §5).
public enum QUICCipherSuite: UInt16, Sendable {
    case aes128GCM = 0x1301
    case aes256GCM = 0x1302
    case chacha20Poly1305 = 0x1303

    var keyLength: Int { self == .aes128GCM ? 16 : 32 }
    var secretLength: Int { self == .aes256GCM ? 48 : 32 }

    var digest: OpaquePointer { self == .aes256GCM ? EVP_sha384() : EVP_sha256() }

    var aead: OpaquePointer {
        switch self {
        case .aes128GCM: EVP_aead_aes_128_gcm()
        case .aes256GCM: EVP_aead_aes_256_gcm()
        case .chacha20Poly1305: EVP_aead_chacha20_poly1305()
        }
    }
}

/// TLS 1.3's HKDF-Expand-Label (RFC 8446 §7.1) with an empty context, the only form QUIC uses.
enum HKDFLabel {
    static func expand(secret: [UInt8], label: String, length: Int, digest: OpaquePointer) -> [UInt8] {
        let fullLabel = Array("tls13 \(label)".utf8)
        var info: [UInt8] = [UInt8(length >> 8), UInt8(length & 0xFF), UInt8(fullLabel.count)]
        info += fullLabel
        info.append(0)  // empty context
        var output = [UInt8](repeating: 0, count: length)
        let status = HKDF_expand(&output, length, digest, secret, secret.count, info, info.count)
        precondition(status == 1, "HKDF-Expand with a valid digest and length cannot fail")
        return output
    }

    static func extract(salt: [UInt8], inputKeyMaterial: [UInt8], digest: OpaquePointer) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length = 0
        let status = HKDF_extract(&output, &length, digest, inputKeyMaterial, inputKeyMaterial.count, salt, salt.count)
        precondition(status == 1, "HKDF-Extract with a valid digest cannot fail")
        return Array(output.prefix(length))
    }
}
