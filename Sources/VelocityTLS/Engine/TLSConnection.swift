import CNIOBoringSSL
import NIOCore

/// One server-side TLS connection: a BoringSSL `SSL` between two memory BIOs, fed with network bytes and
/// drained of records by ``TLSServerHandler``. Not thread-safe: it lives on its channel's event loop.
final class TLSConnection {
    enum Progress: Equatable {
        case needInput
        case complete
        case failed(String)
    }

    enum ReadResult: Equatable {
        case data
        case needInput
        case closed
        case failed(String)
    }

    let context: TLSServerContext
    private let certificates: CertificateTable
    /// The connection's local IP address: the name to look up when a client sends no SNI (as for an IP URL).
    private let localName: String?
    let ssl: OpaquePointer
    private let input: OpaquePointer
    private let output: OpaquePointer

    private static let ownerIndex = SSL_get_ex_new_index(0, nil, nil, nil, nil)

    init?(context: TLSServerContext, certificates: CertificateTable, localName: String?) {
        guard let ssl = SSL_new(context.context) else { return nil }
        guard let input = BIO_new(BIO_s_mem()), let output = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            return nil
        }
        self.context = context
        self.certificates = certificates
        self.localName = localName
        self.ssl = ssl
        self.input = input
        self.output = output
        SSL_set_bio(ssl, input, output)  // the SSL owns both BIOs from here on
        SSL_set_accept_state(ssl)
        SSL_set_ex_data(ssl, Self.ownerIndex, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        SSL_free(ssl)
    }

    /// The connection an `SSL` belongs to, for BoringSSL's callbacks.
    static func owner(of ssl: OpaquePointer?) -> TLSConnection? {
        guard let ssl, let pointer = SSL_get_ex_data(ssl, ownerIndex) else { return nil }
        return Unmanaged<TLSConnection>.fromOpaque(pointer).takeUnretainedValue()
    }

    var serverName: String? { TLSSessionInfo.serverName(of: ssl) }

    /// The handshake presents an ACME TLS-ALPN-01 challenge certificate instead of the name's own.
    private(set) var answersACMEChallenge = false

    /// Called from the ClientHello callback: installs the certificate for the requested name, or, for a client
    /// offering acme-tls/1, the challenge certificate for it (and fails the handshake when there is none).
    func selectCertificate(offeringACME: Bool) -> Bool {
        let name = serverName ?? localName
        if offeringACME {
            guard let challenge = name.flatMap(certificates.acmeChallenge(for:)) else { return false }
            answersACMEChallenge = true
            return challenge.install(on: ssl)
        }
        if let name, certificates.pendingNames.contains(name) {
            refusesName = true  // the servername callback sends the alert
            return true
        }
        return certificates.credential(for: name)?.install(on: ssl) ?? false
    }

    /// The name's certificate is still being obtained: the handshake ends with `unrecognized_name`.
    private(set) var refusesName = false

    func feed(_ bytes: ByteBuffer) {
        bytes.withUnsafeReadableBytes { raw in
            _ = BIO_write(input, raw.baseAddress, Int32(raw.count))
        }
    }

    func handshake() -> Progress {
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        if result == 1 { return .complete }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .needInput
        default: return .failed(Self.lastError())
        }
    }

    /// Decrypts one record's worth of application data into `buffer`.
    func read(into buffer: inout ByteBuffer) -> ReadResult {
        ERR_clear_error()
        var result: Int32 = 0
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 16384) { raw in
            result = SSL_read(ssl, raw.baseAddress, Int32(raw.count))
            return Int(max(0, result))
        }
        if result > 0 { return .data }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .needInput
        case SSL_ERROR_ZERO_RETURN: return .closed
        default: return .failed(Self.lastError())
        }
    }

    /// Encrypts all of `bytes`; with a memory BIO as output BoringSSL never asks to wait.
    func write(_ bytes: ByteBuffer) -> Bool {
        ERR_clear_error()
        return bytes.withUnsafeReadableBytes { raw in
            raw.isEmpty || SSL_write(ssl, raw.baseAddress, Int32(raw.count)) == Int32(raw.count)
        }
    }

    /// Sends close_notify.
    func shutdown() {
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
    }

    var pendingOutput: Int { Int(BIO_pending(output)) }

    /// Whether a read could produce anything: undelivered plaintext, or network bytes not yet processed.
    var hasInput: Bool { SSL_pending(ssl) > 0 || BIO_pending(input) > 0 }

    /// Moves every encrypted byte waiting in the output BIO into `buffer`.
    func drainOutput(into buffer: inout ByteBuffer) {
        var contents: UnsafePointer<UInt8>?
        var length = 0
        guard BIO_mem_contents(output, &contents, &length) == 1, let contents, length > 0 else { return }
        buffer.writeBytes(UnsafeRawBufferPointer(start: contents, count: length))
        _ = BIO_reset(output)
    }

    var sessionInfo: TLSSessionInfo { TLSSessionInfo(ssl: ssl) }

    static func lastError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return "the TLS connection failed" }
        var text = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &text, text.count)
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
