import CNIOBoringSSL
import VelocityConfig

/// Settings shared by every server handshake: versions, cipher suites, key-exchange groups, session tickets
/// and ALPN. Certificates are not here: each connection carries the ``CertificateTable`` of the snapshot it
/// started under, and the ClientHello callback picks from it.
public final class TLSServerContext: @unchecked Sendable {
    // Configured once in init, then only read by BoringSSL (which is thread-safe for a configured SSL_CTX).
    let context: OpaquePointer

    public static let defaultALPN = ["h2", "http/1.1"]
    /// RFC 8737: offered alone by ACME servers validating a TLS-ALPN-01 challenge.
    static let acmeALPN = Array("acme-tls/1".utf8)

    /// Modern AEAD suites with forward secrecy for TLS 1.2; TLS 1.3's suites are always AEAD.
    private static let tls12Ciphers = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    let alpn: [[UInt8]]
    /// The groups in order of preference, and whether tickets are issued: what decides if a new config needs a
    /// new context.
    public let groups: [KeyExchangeGroup]
    /// Nil when session tickets are off.
    let tickets: TicketKeyRing?
    public var issuesTickets: Bool { tickets != nil }

    /// Post-quantum first by default: clients that offer X25519MLKEM768 get it, older ones fall back.
    public init(
        groups: [KeyExchangeGroup] = KeyExchangeGroup.defaults, tickets: TicketKeyRing?,
        alpn: [String] = defaultALPN
    ) throws(TLSCredentialError) {
        guard let context = SSL_CTX_new(TLS_method()) else {
            throw TLSCredentialError(description: "BoringSSL could not make a TLS context")
        }
        self.context = context
        self.alpn = alpn.map { Array($0.utf8) }
        self.groups = groups
        self.tickets = tickets
        guard SSL_CTX_set_min_proto_version(context, UInt16(TLS1_2_VERSION)) == 1,
            SSL_CTX_set_max_proto_version(context, UInt16(TLS1_3_VERSION)) == 1,
            SSL_CTX_set_strict_cipher_list(context, Self.tls12Ciphers) == 1
        else { throw TLSCredentialError(description: "BoringSSL refused the protocol settings") }
        let names = groups.map(\.rawValue).joined(separator: ":")
        guard SSL_CTX_set1_groups_list(context, names) == 1 else {
            throw TLSCredentialError(description: "BoringSSL refused the key-exchange groups \(names)")
        }
        if tickets != nil {
            SSL_CTX_set_tlsext_ticket_key_cb(context, TicketKeyRing.callback)
        } else {
            SSL_CTX_set_options(context, UInt32(SSL_OP_NO_TICKET))
        }
        SSL_CTX_set_select_certificate_cb(context) { hello in
            guard let hello, let connection = TLSConnection.owner(of: hello.pointee.ssl) else {
                return ssl_select_cert_error
            }
            return connection.selectCertificate(offeringACME: ALPN.offersACME(hello))
                ? ssl_select_cert_success : ssl_select_cert_error
        }
        // Runs after the certificate callback; the default alert is unrecognized_name (RFC 6066 §3).
        SSL_CTX_set_tlsext_servername_callback(context) { ssl, _, _ in
            TLSConnection.owner(of: ssl)?.refusesName == true ? SSL_TLSEXT_ERR_ALERT_FATAL : SSL_TLSEXT_ERR_NOACK
        }
        SSL_CTX_set_alpn_select_cb(
            context,
            { ssl, out, outLength, offered, offeredLength, _ in
                guard let ssl, let offered, let connection = TLSConnection.owner(of: ssl) else {
                    return SSL_TLSEXT_ERR_NOACK
                }
                // A handshake answering an ACME challenge speaks acme-tls/1 and nothing else (RFC 8737 §3).
                let acme = connection.answersACMEChallenge
                guard
                    let choice = ALPN.select(
                        from: UnsafeBufferPointer(start: offered, count: Int(offeredLength)),
                        preferring: acme ? [TLSServerContext.acmeALPN] : connection.context.alpn)
                else { return acme ? SSL_TLSEXT_ERR_ALERT_FATAL : SSL_TLSEXT_ERR_NOACK }
                // The answer points into the client's list, which outlives this callback.
                out?.pointee = choice.baseAddress
                outLength?.pointee = UInt8(choice.count)
                return SSL_TLSEXT_ERR_OK
            }, nil)
    }

    deinit {
        SSL_CTX_free(context)
    }
}

/// ALPN (RFC 7301) protocol selection: the server's order wins, so h2 is chosen whenever a client offers it.
enum ALPN {
    /// The element of the client's wire-format list (length-prefixed names) that comes first in `preferring`.
    static func select(from offered: UnsafeBufferPointer<UInt8>, preferring: [[UInt8]]) -> UnsafeBufferPointer<UInt8>? {
        var names: [UnsafeBufferPointer<UInt8>] = []
        var index = 0
        while index < offered.count {
            let length = Int(offered[index])
            guard length > 0, index + 1 + length <= offered.count else { return nil }
            names.append(UnsafeBufferPointer(rebasing: offered[(index + 1)..<(index + 1 + length)]))
            index += 1 + length
        }
        for wanted in preferring {
            if let match = names.first(where: { $0.elementsEqual(wanted) }) { return match }
        }
        return nil
    }

    /// Whether a ClientHello's ALPN extension lists acme-tls/1.
    static func offersACME(_ hello: UnsafePointer<SSL_CLIENT_HELLO>) -> Bool {
        var data: UnsafePointer<UInt8>?
        var length = 0
        guard
            SSL_early_callback_ctx_extension_get(
                hello, UInt16(TLSEXT_TYPE_application_layer_protocol_negotiation), &data, &length) == 1,
            let data, length >= 2
        else { return false }
        // The extension holds a two-byte length, then the same list the ALPN callback sees.
        let list = UnsafeBufferPointer(start: data + 2, count: length - 2)
        return select(from: list, preferring: [TLSServerContext.acmeALPN]) != nil
    }
}
