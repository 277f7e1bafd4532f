import VelocityConfig

/// The admin API's access rules as the current config and the listen address make them.
public struct AdminPolicy: Sendable {
    /// Host names (no port) accepted in the `Host` header; nil accepts any (unix sockets).
    var allowedHosts: Set<String>?
    /// Origins accepted in the `Origin` header, in ``normalizedOrigin(_:)`` form.
    var allowedOrigins: Set<String>
    var tokenDigests: [String]
    var maxBodyBytes: Int

    static let defaultMaxBodyBytes = 4 * 1024 * 1024

    init(config: AdminConfig?, address: ListenAddress) {
        var origins = Set((config?.allowedOrigins ?? []).map(Self.normalizedOrigin))
        switch address {
        case .unix:
            allowedHosts = nil
        case .inet(let host, let port):
            var hosts: Set<String> = ["localhost", "127.0.0.1", "::1"]
            if !host.isEmpty { hosts.insert(host.lowercased()) }
            for extra in config?.allowedHosts ?? [] { hosts.insert(extra.lowercased()) }
            allowedHosts = hosts
            for name in hosts {
                let authority = name.contains(":") ? "[\(name)]:\(port)" : "\(name):\(port)"
                origins.insert("http://\(authority)")
                origins.insert("https://\(authority)")
            }
        }
        allowedOrigins = origins
        tokenDigests = config?.auth?.bearerTokenSHA256 ?? []
        maxBodyBytes = config?.maxBodyBytes ?? Self.defaultMaxBodyBytes
    }

    /// Why a request may not be served, or nil when it may.
    func refusal(host: String?, origin: String?, authorization: String?, upgrade: Bool) -> AdminError? {
        if upgrade {
            return AdminError(.badRequest, "the admin API does not accept protocol upgrades")
        }
        if let allowedHosts {
            guard let host else { return AdminError(.badRequest, "a Host header is required") }
            let name = Self.hostName(host)
            guard allowedHosts.contains(name) else {
                return AdminError(.forbidden, "host not allowed: \(name)")
            }
        }
        if let origin, !allowedOrigins.contains(Self.normalizedOrigin(origin)) {
            return AdminError(.forbidden, "origin not allowed: \(origin)")
        }
        if !tokenDigests.isEmpty {
            guard let authorization, authorization.lowercased().hasPrefix("bearer ") else {
                return .unauthorized("a bearer token is required")
            }
            let digest = Digest.sha256Hex(Array(authorization.dropFirst(7).utf8))
            // Compare every digest in full so timing says nothing about which or how much matched.
            var matched = false
            for candidate in tokenDigests where Self.constantTimeEqual(candidate, digest) { matched = true }
            guard matched else { return .unauthorized("the bearer token is not valid") }
        }
        return nil
    }

    /// Lowercase `scheme://host:port`, with the scheme's default port written out, so that
    /// `http://localhost` and `http://localhost:80` are the same origin.
    static func normalizedOrigin(_ origin: String) -> String {
        let lowered = origin.lowercased()
        let defaultPort = lowered.hasPrefix("https://") ? 443 : lowered.hasPrefix("http://") ? 80 : nil
        guard let defaultPort, let separator = lowered.firstRange(of: "://") else { return lowered }
        let authority = lowered[separator.upperBound...]
        let hasPort = authority.hasPrefix("[") ? authority.contains("]:") : authority.contains(":")
        return hasPort ? lowered : "\(lowered):\(defaultPort)"
    }

    private static func hostName(_ host: String) -> String {
        var name = Substring(host.lowercased())
        if name.hasPrefix("[") {
            name = name.dropFirst().prefix(while: { $0 != "]" })
        } else if let colon = name.lastIndex(of: ":") {
            name = name[..<colon]
        }
        return String(name)
    }

    private static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }
}
