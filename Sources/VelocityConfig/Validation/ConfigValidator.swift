import Foundation

/// A config that decoded strictly and passed every check of meaning.
public struct ValidatedConfig: Sendable {
    /// The document as submitted; the store keeps exactly this.
    public var document: JSONValue
    public var config: VelocityConfig
}

/// Facts about the running process a config is checked against.
public struct ValidationContext: Sendable {
    /// The admin API's effective address: a data-plane listener must not take it.
    public var adminAddress: ListenAddress?

    public init(adminAddress: ListenAddress?) {
        self.adminAddress = adminAddress
    }
}

/// Checks a config document: `@id` uniqueness, strict decoding, then meaning (addresses, collisions, hosts,
/// matchers, handlers), always reporting the JSON Pointer of the first offending value.
public enum ConfigValidator {
    public static let defaultAdminAddress = "127.0.0.1:2019"

    /// The admin address a document asks for, unless the process overrides it (`velocity run --admin`). An
    /// unparsable `admin.listen` is reported by validation; until then the default stands in.
    public static func adminAddress(of document: JSONValue, override: ListenAddress?) -> ListenAddress {
        override ?? document["admin"]?["listen"]?.stringValue.flatMap(ListenAddress.init)
            ?? ListenAddress(defaultAdminAddress)!
    }

    public static func validate(_ document: JSONValue, context: ValidationContext) throws -> ValidatedConfig {
        guard case .object = document else {
            throw ConfigError(at: .root, "the config must be a JSON object, found \(document.typeName)")
        }
        _ = try IDIndex(document)
        let config = try StrictDecoder.decode(VelocityConfig.self, from: document)
        let checker = MeaningChecker(context: context)
        try checker.check(config)
        return ValidatedConfig(document: document, config: config)
    }
}

/// Every `"@id"` in a document and where it stands.
public struct IDIndex: Sendable {
    public private(set) var pointers: [String: JSONPointer] = [:]

    public init(_ document: JSONValue) throws {
        try collect(document, at: .root)
    }

    private mutating func collect(_ value: JSONValue, at pointer: JSONPointer) throws {
        switch value {
        case .object(let object):
            if let id = object["@id"] {
                let idPointer = pointer.appending("@id")
                guard case .string(let name) = id, !name.isEmpty, !name.contains("/") else {
                    throw ConfigError(at: idPointer, "\"@id\" must be a non-empty string without \"/\"")
                }
                if let first = pointers[name] {
                    throw ConfigError(at: idPointer, "duplicate @id \"\(name)\" (first used at \(first))")
                }
                pointers[name] = pointer
            }
            for key in object.keys.sorted() where key != "@id" {
                try collect(object[key]!, at: pointer.appending(key))
            }
        case .array(let array):
            for (index, element) in array.enumerated() {
                try collect(element, at: pointer.appending(index))
            }
        default:
            break
        }
    }
}

private struct MeaningChecker {
    let context: ValidationContext

    func check(_ config: VelocityConfig) throws {
        for (member, value) in [
            ("request_head_ms", config.timeouts?.requestHeadMs), ("idle_ms", config.timeouts?.idleMs),
        ] {
            if let value, !(100...3_600_000).contains(value) {
                throw ConfigError(
                    at: JSONPointer.root.appending("timeouts").appending(member), "between 100 and 3600000 ms")
            }
        }
        if let directory = config.quic?.qlogDir, !directory.hasPrefix("/") || directory.utf8.contains(0) {
            throw ConfigError(at: JSONPointer.root.appending("quic").appending("qlog_dir"), "an absolute path")
        }
        try checkAdmin(config.admin)
        try checkListeners(config.listeners ?? [])
        try checkSites(config.sites ?? [])
        try checkTLS(config.tls)
    }

    private func checkAdmin(_ admin: AdminConfig?) throws {
        let base = JSONPointer.root.appending("admin")
        if let listen = admin?.listen, ListenAddress(listen) == nil {
            throw ConfigError(at: base.appending("listen"), "\"\(listen)\" is not host:port, [v6]:port or unix:/path")
        }
        // The effective address counts, so `velocity run --admin 0.0.0.0:…` cannot expose an open admin API.
        if let address = context.adminAddress, !address.isLoopback, (admin?.auth?.bearerTokenSHA256 ?? []).isEmpty {
            throw ConfigError(
                at: admin?.listen == nil ? base : base.appending("listen"),
                "the admin API on \(address) is reachable from other hosts and needs authentication: "
                    + "set admin.auth.bearer_token_sha256")
        }
        guard let admin else { return }
        if let limit = admin.maxBodyBytes, limit < 1024 {
            throw ConfigError(at: base.appending("max_body_bytes"), "must be at least 1024")
        }
        for (index, origin) in (admin.allowedOrigins ?? []).enumerated() where !Self.isOrigin(origin) {
            throw ConfigError(
                at: base.appending("allowed_origins").appending(index), "\"\(origin)\" is not scheme://host[:port]")
        }
        for (index, digest) in (admin.auth?.bearerTokenSHA256 ?? []).enumerated() {
            let isLowercaseHex = digest.utf8.allSatisfy {
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                    || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
            }
            guard digest.utf8.count == 64, isLowercaseHex else {
                throw ConfigError(
                    at: base.appending("auth").appending("bearer_token_sha256").appending(index),
                    "must be a lowercase hex SHA-256 digest (64 characters), not a token")
            }
        }
    }

    /// `http://host[:port]` or `https://host[:port]`, with a host and nothing after the authority.
    private static func isOrigin(_ text: String) -> Bool {
        guard let separator = text.firstRange(of: "://") else { return false }
        let scheme = text[..<separator.lowerBound]
        let authority = text[separator.upperBound...]
        guard scheme == "http" || scheme == "https", let first = authority.first, first != ":" else { return false }
        return !authority.contains { "/?# ".contains($0) }
    }

    private func checkListeners(_ listeners: [ListenerConfig]) throws {
        var taken: [(address: ListenAddress, udp: Bool, index: Int)] = []
        for (index, listener) in listeners.enumerated() {
            let pointer = JSONPointer.root.appending("listeners").appending(index)
            guard let address = ListenAddress(listener.address), case .inet = address else {
                throw ConfigError(
                    at: pointer.appending("address"), "\"\(listener.address)\" is not host:port, [v6]:port or :port")
            }
            let udp = listener.protocol == .quic
            if let admin = context.adminAddress, !udp, address.overlaps(admin) {
                throw ConfigError(
                    at: pointer.appending("address"), "\(listener.address) collides with the admin API address \(admin)"
                )
            }
            if let other = taken.first(where: { $0.udp == udp && $0.address.overlaps(address) }) {
                throw ConfigError(
                    at: pointer.appending("address"), "\(listener.address) collides with /listeners/\(other.index)")
            }
            taken.append((address, udp, index))
        }
    }

    private func checkSites(_ sites: [SiteConfig]) throws {
        var owners: [String: Int] = [:]
        var catchAll: Int?
        for (siteIndex, site) in sites.enumerated() {
            let pointer = JSONPointer.root.appending("sites").appending(siteIndex)
            let hosts = site.hosts ?? []
            if hosts.isEmpty {
                if let catchAll {
                    throw ConfigError(at: pointer, "only one site may omit \"hosts\"; /sites/\(catchAll) already does")
                }
                catchAll = siteIndex
            }
            for (hostIndex, host) in hosts.enumerated() {
                let hostPointer = pointer.appending("hosts").appending(hostIndex)
                try HostPattern.check(host, at: hostPointer)
                let key = host.lowercased()
                if let owner = owners[key] {
                    throw ConfigError(at: hostPointer, "host \"\(host)\" is already served by /sites/\(owner)")
                }
                owners[key] = siteIndex
            }
            if let hsts = site.hsts, hsts.maxAge < 0 {
                throw ConfigError(at: pointer.appending("hsts").appending("max_age"), "must be 0 or more seconds")
            }
            for (routeIndex, route) in (site.routes ?? []).enumerated() {
                try checkRoute(route, at: pointer.appending("routes").appending(routeIndex))
            }
        }
    }

    private func checkRoute(_ route: RouteConfig, at pointer: JSONPointer) throws {
        for (index, set) in (route.match ?? []).enumerated() {
            try checkMatcherSet(set, at: pointer.appending("match").appending(index))
        }
        for (index, handler) in (route.handle ?? []).enumerated() {
            try checkHandler(handler, at: pointer.appending("handle").appending(index))
        }
    }

    private func checkHandler(_ handler: HandlerConfig, at pointer: JSONPointer) throws {
        switch handler {
        case .staticResponse(let response):
            if let status = response.status, !(100...599).contains(status) {
                throw ConfigError(at: pointer.appending("status"), "status \(status) is not between 100 and 599")
            }
            try checkHeaders(response.headers, at: pointer.appending("headers"))
        case .redirect(let redirect):
            if let status = redirect.status, ![301, 302, 303, 307, 308].contains(status) {
                throw ConfigError(at: pointer.appending("status"), "a redirect status is 301, 302, 303, 307 or 308")
            }
            if let problem = Placeholders.problem(in: redirect.to) {
                throw ConfigError(at: pointer.appending("to"), problem)
            }
        case .headers(let headers):
            try checkHeaderOperations(headers, at: pointer)
        case .fileServer(let fileServer):
            try checkFileServer(fileServer, at: pointer)
        case .rewrite(let rewrite):
            if let prefix = rewrite.stripPrefix, !prefix.hasPrefix("/") || prefix.utf8.contains(where: { $0 < 33 }) {
                throw ConfigError(at: pointer.appending("strip_prefix"), "a prefix starts with \"/\" and has no spaces")
            }
            if let uri = rewrite.uri {
                guard uri.hasPrefix("/") || uri.hasPrefix("{") else {
                    throw ConfigError(at: pointer.appending("uri"), "a rewritten URI starts with \"/\"")
                }
                if let problem = Placeholders.problem(in: uri) {
                    throw ConfigError(at: pointer.appending("uri"), problem)
                }
            }
            if rewrite.stripPrefix == nil, rewrite.uri == nil {
                throw ConfigError(at: pointer, "a rewrite needs strip_prefix or uri")
            }
        case .encode(let encode):
            if let minimum = encode.minimumLength, minimum < 0 {
                throw ConfigError(at: pointer.appending("minimum_length"), "must be 0 or more bytes")
            }
            if encode.encodings?.isEmpty == true {
                throw ConfigError(at: pointer.appending("encodings"), "name at least one encoding")
            }
            for (index, type) in (encode.types ?? []).enumerated() where !Self.isMediaTypePattern(type) {
                throw ConfigError(
                    at: pointer.appending("types").appending(index),
                    "\"\(type)\" is not a media type (type/subtype, type/* or type/*+suffix)")
            }
        case .basicAuth(let auth):
            if auth.accounts.isEmpty {
                throw ConfigError(at: pointer.appending("accounts"), "name at least one account")
            }
            var seen: Set<String> = []
            for (index, account) in auth.accounts.enumerated() {
                let accountPointer = pointer.appending("accounts").appending(index)
                guard !account.username.isEmpty, !account.username.contains(":"), seen.insert(account.username).inserted
                else {
                    throw ConfigError(
                        at: accountPointer.appending("username"), "usernames are non-empty, unique and have no \":\"")
                }
                do {
                    _ = try ScryptHash(parsing: account.password)
                } catch {
                    throw ConfigError(at: accountPointer.appending("password"), error.description)
                }
            }
            if let realm = auth.realm, realm.utf8.contains(where: { $0 < 32 || $0 == UInt8(ascii: "\"") }) {
                throw ConfigError(at: pointer.appending("realm"), "a realm cannot contain quotes or control characters")
            }
        case .reverseProxy(let proxy):
            try checkReverseProxy(proxy, at: pointer)
        case .subroute(let subroute):
            for (index, route) in (subroute.routes ?? []).enumerated() {
                try checkRoute(route, at: pointer.appending("routes").appending(index))
            }
        }
    }

    private func checkReverseProxy(_ proxy: ReverseProxyConfig, at pointer: JSONPointer) throws {
        if proxy.upstreams.isEmpty {
            throw ConfigError(at: pointer.appending("upstreams"), "name at least one upstream")
        }
        for (index, upstream) in proxy.upstreams.enumerated() {
            let upstreamPointer = pointer.appending("upstreams").appending(index)
            guard let address = ListenAddress(upstream.dial), address.isDialable else {
                throw ConfigError(
                    at: upstreamPointer.appending("dial"),
                    "\"\(upstream.dial)\" is not an upstream address: use host:port, [v6]:port or unix:/path")
            }
            if let weight = upstream.weight, !(1...1000).contains(weight) {
                throw ConfigError(at: upstreamPointer.appending("weight"), "a weight is between 1 and 1000")
            }
        }
        let balancing = pointer.appending("load_balancing")
        if let retries = proxy.loadBalancing?.retries, !(0...10).contains(retries) {
            throw ConfigError(at: balancing.appending("retries"), "retries are between 0 and 10")
        }
        switch proxy.loadBalancing?.policy {
        case .header:
            guard let header = proxy.loadBalancing?.header, HTTPToken.isValid(header) else {
                throw ConfigError(at: balancing.appending("header"), "the header policy needs a header name")
            }
        case .cookie:
            if let cookie = proxy.loadBalancing?.cookie, !HTTPToken.isValid(cookie) {
                throw ConfigError(at: balancing.appending("cookie"), "\"\(cookie)\" is not a cookie name")
            }
        default:
            break
        }
        if let passive = proxy.healthChecks?.passive {
            let passivePointer = pointer.appending("health_checks").appending("passive")
            if let seconds = passive.failDurationSeconds, !(1...86_400).contains(seconds) {
                throw ConfigError(at: passivePointer.appending("fail_duration_seconds"), "between 1 and 86400 seconds")
            }
            if let fails = passive.maxFails, !(1...1000).contains(fails) {
                throw ConfigError(at: passivePointer.appending("max_fails"), "between 1 and 1000")
            }
            for (index, status) in (passive.unhealthyStatus ?? []).enumerated() where !(100...599).contains(status) {
                throw ConfigError(
                    at: passivePointer.appending("unhealthy_status").appending(index), "a status is 100 to 599")
            }
            if let latency = passive.unhealthyLatencyMs, latency < 1 {
                throw ConfigError(at: passivePointer.appending("unhealthy_latency_ms"), "at least 1 ms")
            }
        }
        if let active = proxy.healthChecks?.active {
            let activePointer = pointer.appending("health_checks").appending("active")
            if let path = active.path, !path.hasPrefix("/") || path.utf8.contains(where: { $0 < 33 || $0 == 127 }) {
                throw ConfigError(at: activePointer.appending("path"), "a check path starts with / and has no spaces")
            }
            if let interval = active.intervalMs, !(100...3_600_000).contains(interval) {
                throw ConfigError(at: activePointer.appending("interval_ms"), "between 100 and 3600000 ms")
            }
            if let timeout = active.timeoutMs, !(1...600_000).contains(timeout) {
                throw ConfigError(at: activePointer.appending("timeout_ms"), "between 1 and 600000 ms")
            }
            for (index, status) in (active.expectStatus ?? []).enumerated() where !(100...599).contains(status) {
                throw ConfigError(
                    at: activePointer.appending("expect_status").appending(index), "a status is 100 to 599")
            }
            for (member, count) in [("passes", active.passes), ("fails", active.fails)] {
                if let count, !(1...100).contains(count) {
                    throw ConfigError(at: activePointer.appending(member), "between 1 and 100")
                }
            }
            if let host = active.host, !Self.isHostValue(host) {
                throw ConfigError(
                    at: activePointer.appending("host"), "a Host value has no spaces or control characters")
            }
        }
        if let headers = proxy.headers {
            try checkHeaderOperations(headers, at: pointer.appending("headers"))
        }
        for (index, range) in (proxy.trustedProxies ?? []).enumerated() where IPRange(range) == nil {
            throw ConfigError(
                at: pointer.appending("trusted_proxies").appending(index),
                "\"\(range)\" is not an IP address or CIDR range")
        }
        if let host = proxy.hostHeader, !Self.isHostValue(host) {
            throw ConfigError(at: pointer.appending("host_header"), "a Host value has no spaces or control characters")
        }
        if let tls = proxy.transport?.tls {
            let tlsPointer = pointer.appending("transport").appending("tls")
            if (tls.clientCertificateFile == nil) != (tls.clientKeyFile == nil) {
                throw ConfigError(at: tlsPointer, "give both client_certificate_file and client_key_file, or neither")
            }
            if let name = tls.serverName, (try? HostPattern.check(name, at: tlsPointer)) == nil || name.hasPrefix("*.")
            {
                throw ConfigError(at: tlsPointer.appending("server_name"), "\"\(name)\" is not a host name")
            }
            // Certificates are checked against a name: an address alone gives none.
            for (index, upstream) in proxy.upstreams.enumerated()
            where tls.serverName == nil && tls.insecureSkipVerify != true {
                if ListenAddress(upstream.dial)?.hostName == nil {
                    throw ConfigError(
                        at: pointer.appending("upstreams").appending(index).appending("dial"),
                        "TLS to an IP address or unix socket needs transport.tls.server_name to check the "
                            + "certificate against")
                }
            }
        }
        let timeouts = pointer.appending("timeouts")
        if let dial = proxy.timeouts?.dialMs, !(1...600_000).contains(dial) {
            throw ConfigError(at: timeouts.appending("dial_ms"), "between 1 and 600000 ms")
        }
        if let header = proxy.timeouts?.responseHeaderMs, !(1...3_600_000).contains(header) {
            throw ConfigError(at: timeouts.appending("response_header_ms"), "between 1 and 3600000 ms")
        }
    }

    private func checkFileServer(_ config: FileServerConfig, at pointer: JSONPointer) throws {
        guard !config.root.isEmpty, !config.root.utf8.contains(0) else {
            throw ConfigError(at: pointer.appending("root"), "root must name a directory")
        }
        for (index, name) in (config.indexNames ?? []).enumerated()
        where name.isEmpty || name.contains("/") || name == "." || name == ".." || name.utf8.contains(0) {
            throw ConfigError(at: pointer.appending("index_names").appending(index), "an index name is a file name")
        }
        for (index, pattern) in (config.hide ?? []).enumerated()
        where pattern.isEmpty || pattern.contains("/") || pattern.utf8.contains(0)
            || pattern.filter({ $0 == "*" }).count > 1
        {
            throw ConfigError(
                at: pointer.appending("hide").appending(index),
                "hide takes file names or patterns with one *, such as *.bak")
        }
    }

    /// `type/subtype`, `type/*` or `type/*+suffix`.
    private static func isMediaTypePattern(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, HTTPToken.isValid(String(parts[0])), !parts[0].contains("*") else { return false }
        let subtype = parts[1]
        if subtype == "*" { return true }
        if subtype.hasPrefix("*+") { return HTTPToken.isValid(String(subtype.dropFirst(2))) }
        return HTTPToken.isValid(String(subtype)) && !subtype.contains("*")
    }

    private func checkMatcherSet(_ set: MatcherSet, at pointer: JSONPointer) throws {
        for (index, host) in (set.host ?? []).enumerated() {
            try HostPattern.check(host, at: pointer.appending("host").appending(index))
        }
        for (index, path) in (set.path ?? []).enumerated() {
            guard PathPattern(path) != nil else {
                throw ConfigError(
                    at: pointer.appending("path").appending(index),
                    "\"\(path)\" is not a path pattern: use /exact, /prefix/*, *.suffix or *")
            }
        }
        for (index, method) in (set.method ?? []).enumerated() {
            guard !method.isEmpty, method.allSatisfy({ $0.isASCII && ($0.isUppercase || $0 == "-") }) else {
                throw ConfigError(
                    at: pointer.appending("method").appending(index), "\"\(method)\" is not an uppercase HTTP method")
            }
        }
        for name in (set.header ?? [:]).keys.sorted() where !HTTPToken.isValid(name) {
            throw ConfigError(at: pointer.appending("header").appending(name), "\"\(name)\" is not a valid header name")
        }
        for (index, range) in (set.remoteIP ?? []).enumerated() where IPRange(range) == nil {
            throw ConfigError(
                at: pointer.appending("remote_ip").appending(index), "\"\(range)\" is not an IP address or CIDR range")
        }
        for (index, negated) in (set.not ?? []).enumerated() {
            try checkMatcherSet(negated, at: pointer.appending("not").appending(index))
        }
    }

    /// The request and response edits of a `headers` handler or a proxy.
    private func checkHeaderOperations(_ headers: HeadersConfig, at pointer: JSONPointer) throws {
        for (side, operations) in [("request", headers.request), ("response", headers.response)] {
            guard let operations else { continue }
            let pointer = pointer.appending(side)
            try checkHeaders(operations.set, at: pointer.appending("set"))
            try checkHeaders(operations.add, at: pointer.appending("add"))
            for (index, name) in (operations.delete ?? []).enumerated() where !HTTPToken.isValid(name) {
                throw ConfigError(
                    at: pointer.appending("delete").appending(index), "\"\(name)\" is not a valid header name")
            }
        }
    }

    /// A value sent as a Host header: no spaces or control characters.
    private static func isHostValue(_ text: String) -> Bool {
        !text.isEmpty && !text.utf8.contains(where: { $0 < 33 || $0 == 127 })
    }

    private func checkHeaders(_ headers: [String: [String]]?, at pointer: JSONPointer) throws {
        for (name, values) in (headers ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard HTTPToken.isValid(name) else {
                throw ConfigError(at: pointer.appending(name), "\"\(name)\" is not a valid header name")
            }
            // Bytes, not Characters: "\r\n" is one Character, equal to neither "\r" nor "\n".
            for (index, value) in values.enumerated()
            where value.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) {
                throw ConfigError(
                    at: pointer.appending(name).appending(index), "header values cannot contain CR, LF or NUL")
            }
        }
    }

    private func checkTLS(_ tls: TLSConfig?) throws {
        let pointer = JSONPointer.root.appending("tls")
        if let groups = tls?.groups {
            if groups.isEmpty { throw ConfigError(at: pointer.appending("groups"), "name at least one group") }
            for (index, group) in groups.enumerated() where groups[..<index].contains(group) {
                throw ConfigError(at: pointer.appending("groups").appending(index), "\(group.rawValue) is listed twice")
            }
        }
        if let rotation = tls?.sessionTickets?.rotationSeconds, !(60...604_800).contains(rotation) {
            throw ConfigError(
                at: pointer.appending("session_tickets").appending("rotation_seconds"),
                "must be between 60 seconds and 604800 (a week)")
        }
        for (index, certificate) in (tls?.certificates ?? []).enumerated() {
            let pointer = JSONPointer.root.appending("tls").appending("certificates").appending(index)
            let files = (certificate.certificateFile, certificate.keyFile)
            let pems = (certificate.certificatePEM, certificate.keyPEM)
            switch (files, pems) {
            case ((.some, .some), (nil, nil)), ((nil, nil), (.some, .some)): break
            default:
                throw ConfigError(
                    at: pointer, "give either certificate_file and key_file, or certificate_pem and key_pem")
            }
        }
        for (index, policy) in (tls?.automation?.policies ?? []).enumerated() {
            try checkPolicy(policy, at: pointer.appending("automation").appending("policies").appending(index))
        }
    }

    private func checkPolicy(_ policy: AutomationPolicy, at pointer: JSONPointer) throws {
        for (index, subject) in (policy.subjects ?? []).enumerated() {
            try HostPattern.check(subject, at: pointer.appending("subjects").appending(index))
        }
        guard policy.issuer == .acme else {
            let acmeOnly: [(String, Bool)] = [
                ("ca", policy.ca != nil), ("email", policy.email != nil), ("accept_terms", policy.acceptTerms != nil),
                ("external_account", policy.externalAccount != nil), ("challenges", policy.challenges != nil),
                ("key_type", policy.keyType != nil), ("trusted_roots_file", policy.trustedRootsFile != nil),
            ]
            if let (member, _) = acmeOnly.first(where: { $0.1 }) {
                throw ConfigError(at: pointer.appending(member), "only an \"acme\" issuer takes \(member)")
            }
            return
        }
        guard policy.acceptTerms == true else {
            throw ConfigError(
                at: pointer, "an acme issuer needs \"accept_terms\": true, agreeing to the CA's terms of service")
        }
        if let ca = policy.ca {
            guard let url = URL(string: ca), url.scheme == "https", url.host?.isEmpty == false else {
                throw ConfigError(at: pointer.appending("ca"), "\"\(ca)\" is not an https:// directory URL")
            }
        }
        if let email = policy.email {
            let parts = email.split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty,
                !email.contains(where: { $0.isWhitespace || $0 == "," || $0 == ":" })
            else { throw ConfigError(at: pointer.appending("email"), "\"\(email)\" is not an email address") }
        }
        if let account = policy.externalAccount {
            let base = pointer.appending("external_account")
            if account.keyID.isEmpty { throw ConfigError(at: base.appending("key_id"), "must not be empty") }
            // The MAC key is a secret: the message never repeats it.
            guard let key = Base64.decodeURLSafe(account.macKey), !key.isEmpty else {
                throw ConfigError(at: base.appending("mac_key"), "must be the CA's HMAC key in base64url")
            }
        }
        let challenges = [("http_01", policy.challenges?.http01), ("tls_alpn_01", policy.challenges?.tlsALPN01)]
        for (name, challenge) in challenges {
            if let port = challenge?.alternatePort, !(1...65535).contains(port) {
                throw ConfigError(
                    at: pointer.appending("challenges").appending(name).appending("alternate_port"),
                    "must be a port number from 1 to 65535")
            }
        }
        if challenges.allSatisfy({ $0.1?.enabled == false }) {
            throw ConfigError(at: pointer.appending("challenges"), "enable at least one challenge")
        }
    }
}

/// A host name or `*.`-wildcard as used in `hosts` and the `host` matcher.
enum HostPattern {
    static func check(_ host: String, at pointer: JSONPointer) throws {
        let name = host.hasPrefix("*.") ? String(host.dropFirst(2)) : host
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        let valid =
            !name.isEmpty && name.count <= 253
            && (IPAddress(name) != nil
                || labels.allSatisfy { label in
                    !label.isEmpty && label.count <= 63
                        && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
                })
        guard valid else {
            throw ConfigError(at: pointer, "\"\(host)\" is not a host name (a leading \"*.\" is the only wildcard)")
        }
    }
}

/// RFC 9110 token characters, which header names and methods are made of.
public enum HTTPToken {
    public static func isValid(_ text: String) -> Bool {
        !text.isEmpty
            && text.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"):
                    true
                default: "!#$%&'*+-.^_`|~".utf8.contains(byte)
                }
            }
    }
}
