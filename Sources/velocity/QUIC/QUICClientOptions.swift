import ArgumentParser
import Foundation
import VelocityConfig
import VelocityQUIC
import VelocityTLS

/// How the client handshakes: what it trusts, which key-exchange groups it offers, the name it asks for.
struct QUICClientOptions: ParsableArguments {
    @Option(
        help: "Trust the CA certificates in this PEM file (e.g. from `velocity ca export`) instead of the system's.")
    var ca: String?

    @Flag(help: "Do not check the server's certificate at all (benchmarks and diagnostics only).")
    var insecure = false

    @Option(
        help: "Key-exchange groups to offer, in order, comma-separated: X25519MLKEM768, X25519, P-256, P-384, P-521.")
    var groups = KeyExchangeGroup.defaults.map(\.rawValue).joined(separator: ",")

    @Option(help: "The name the certificate must carry, and SNI; default: the host.")
    var serverName: String?

    @Option(help: "Seconds without a packet from the server before giving up (handshake included).")
    var timeout = 10.0

    func validate() throws {
        if ca != nil, insecure { throw ValidationError("--ca and --insecure exclude each other") }
        _ = try keyExchangeGroups()
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    func keyExchangeGroups() throws -> [KeyExchangeGroup] {
        try groups.split(separator: ",").map { name in
            let name = name.trimmingCharacters(in: .whitespaces)
            guard let group = KeyExchangeGroup(rawValue: name) else {
                throw ValidationError("unknown group \"\(name)\"")
            }
            return group
        }
    }

    /// The TLS context for connections offering `alpn`.
    func tlsContext(alpn: [String]) throws -> TLSClientContext {
        let verification: TLSClientContext.Verification
        if insecure {
            verification = .insecure
        } else if let ca {
            guard let pem = FileManager.default.contents(atPath: ca) else { throw ValidationError("cannot read \(ca)") }
            verification = .roots(pem: String(decoding: pem, as: UTF8.self))
        } else {
            verification = .system
        }
        let groups = try keyExchangeGroups()
        do {
            return try TLSClientContext(groups: groups, alpn: alpn, verification: verification)
        } catch {
            throw ValidationError(error.description)
        }
    }

    var settings: ConnectionSettings {
        var settings = ConnectionSettings()
        settings.idleTimeout = .milliseconds(Int64(timeout * 1000))
        // Large windows: a client that downloads should never be what slows the server down.
        settings.streamWindow = 8 << 20
        settings.connectionWindow = 32 << 20
        return settings
    }
}

/// Where a client command connects: host, port, and for URLs the path and the authority to send.
struct QUICTarget {
    var host: String
    var port: Int
    var path = "/"
    var authority: String

    /// `https://host[:port]/path`; the port defaults to 443.
    init(url text: String) throws {
        guard let url = URL(string: text), url.scheme == "https", let host = url.host, !host.isEmpty else {
            throw ValidationError("\"\(text)\" is not an https:// URL")
        }
        self.host = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        port = url.port ?? 443
        let query = url.query.map { "?" + $0 } ?? ""
        path = (url.path.isEmpty ? "/" : url.path) + query
        authority = url.port.map { "\(host):\($0)" } ?? host
    }

    /// `host:port`, with IPv6 addresses in brackets.
    init(hostPort text: String) throws {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port)
        else { throw ValidationError("\"\(text)\" is not HOST:PORT") }
        host = String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        self.port = port
        authority = text
    }
}

/// Prints to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Milliseconds with one decimal.
func milliseconds(_ seconds: Double) -> String {
    String(format: "%.1f ms", seconds * 1000)
}

/// The time since `start`, in seconds.
func elapsedSeconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}
