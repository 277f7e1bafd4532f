import CNIOBoringSSL
import VelocityConfig

/// Settings shared by the client handshakes of Velocity's own QUIC client: TLS 1.3 only, the key-exchange
/// groups to offer in order, and how the server's certificate is checked.
public final class TLSClientContext: @unchecked Sendable {
    // Configured once in init, then only read by BoringSSL (which is thread-safe for a configured SSL_CTX).
    let context: OpaquePointer

    /// How the server's certificate chain is checked.
    public enum Verification: Sendable {
        /// Against these roots (one or more PEM `CERTIFICATE` blocks), and the name asked for.
        case roots(pem: String)
        /// Against the system's CA bundle, and the name asked for.
        case system
        /// Not at all: only for benchmarks and diagnostics against servers with throwaway certificates.
        case insecure
    }

    public let groups: [KeyExchangeGroup]
    /// The ALPN list in wire format (length-prefixed names).
    let alpn: [UInt8]
    public let verifiesCertificates: Bool

    /// CA bundles of the common Linux distributions, tried in order for ``Verification/system``.
    private static let systemBundles = [
        "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem",
    ]

    public init(
        groups: [KeyExchangeGroup] = KeyExchangeGroup.defaults, alpn: [String], verification: Verification
    ) throws(TLSCredentialError) {
        guard let context = SSL_CTX_new(TLS_method()) else {
            throw TLSCredentialError(description: "BoringSSL could not make a TLS context")
        }
        self.context = context
        self.groups = groups
        self.alpn = alpn.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
        guard SSL_CTX_set_min_proto_version(context, UInt16(TLS1_3_VERSION)) == 1,
            SSL_CTX_set_max_proto_version(context, UInt16(TLS1_3_VERSION)) == 1
        else { throw TLSCredentialError(description: "BoringSSL refused the protocol settings") }
        let names = groups.map(\.rawValue).joined(separator: ":")
        guard !groups.isEmpty, SSL_CTX_set1_groups_list(context, names) == 1 else {
            throw TLSCredentialError(description: "BoringSSL refused the key-exchange groups \(names)")
        }
        switch verification {
        case .insecure:
            verifiesCertificates = false
            SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        case .roots(let pem):
            verifiesCertificates = true
            try Self.addRoots(pem, to: context)
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        case .system:
            verifiesCertificates = true
            guard Self.systemBundles.contains(where: { SSL_CTX_load_verify_locations(context, $0, nil) == 1 }) else {
                ERR_clear_error()
                throw TLSCredentialError(description: "no system CA bundle found; name one with a CA file")
            }
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        }
    }

    deinit {
        SSL_CTX_free(context)
    }

    private static func addRoots(_ pem: String, to context: OpaquePointer) throws(TLSCredentialError) {
        let store = SSL_CTX_get_cert_store(context)
        let bytes = Array(pem.utf8)
        let added = bytes.withUnsafeBytes { raw -> Int in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, raw.count) else { return 0 }
            defer { BIO_free(bio) }
            var count = 0
            while let certificate = PEM_read_bio_X509(bio, nil, nil, nil) {
                if X509_STORE_add_cert(store, certificate) == 1 { count += 1 }
                X509_free(certificate)
            }
            return count
        }
        // Reading stops with an end-of-data error, which must not linger for a later call to report.
        ERR_clear_error()
        guard added > 0 else { throw TLSCredentialError(description: "the CA file holds no certificate") }
    }

    /// A new client `SSL` for one handshake with `serverName` (a DNS name or an IP address): SNI for names,
    /// and the name the certificate must match when certificates are checked.
    func makeSSL(serverName: String) -> OpaquePointer? {
        guard let ssl = SSL_new(context) else { return nil }
        SSL_set_connect_state(ssl)
        let isAddress = IPAddress(serverName) != nil
        var configured = alpn.withUnsafeBufferPointer { SSL_set_alpn_protos(ssl, $0.baseAddress, $0.count) == 0 }
        if !isAddress { configured = configured && SSL_set_tlsext_host_name(ssl, serverName) == 1 }
        if verifiesCertificates {
            configured =
                configured
                && (isAddress
                    ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName) == 1
                    : SSL_set1_host(ssl, serverName) == 1)
        }
        guard configured else {
            SSL_free(ssl)
            return nil
        }
        return ssl
    }
}
